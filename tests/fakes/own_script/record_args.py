"""A user's own training script, as small as one can be: it records how it was started and exits.

Each rank writes $SM_OUTPUT_DATA_DIR/record-<rank>.json: its argv, the SM_* and torchrun variables, the files
next to it, and values from a module beside it and from a package its requirements.txt installs.
"""

import json
import os
import sys
from pathlib import Path

import helper  # a module next to the script: the whole source_dir went up
import tinypkg  # from requirements.txt (a wheel inside source_dir, installed for the run)

rank = int(os.environ.get("RANK", "0"))
here = Path(__file__).resolve().parent
names = sorted(k for k in os.environ if k.startswith("SM_") or k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
record = {
    "argv": sys.argv[1:],
    "env": {k: os.environ[k] for k in names},
    "files": sorted(p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file()),
    "helper": helper.VALUE,
    "tinypkg": tinypkg.VALUE,
}
out = Path(os.environ["SM_OUTPUT_DATA_DIR"])
out.mkdir(parents=True, exist_ok=True)
(out / f"record-{rank}.json").write_text(json.dumps(record, indent=1))
