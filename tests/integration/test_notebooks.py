"""Execute every notebook in notebooks/ top to bottom with nbclient and a real kernel, offline.

A cell that raises fails the test with the cell's traceback. The committed notebooks carry no outputs (they are
executed here, not stored executed): tests/unit/test_notebook_files.py checks that without a kernel.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.notebook, pytest.mark.integration]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
BUDGET_S = 180
"""Each notebook should run in about 2 minutes on 2 CPU cores; fail well before CI's patience runs out."""


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """A kernelspec for this interpreter (installed for the user when ``python3`` is not this Python)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    python3 = specs.get("python3", {}).get("spec", {})
    argv0 = (python3.get("argv") or [""])[0]
    if argv0 in ("python", "python3", sys.executable) or (
        argv0 and Path(argv0).resolve() == Path(sys.executable).resolve()
    ):
        return "python3"
    name = "smlaunch-test"
    if name not in specs:
        from ipykernel.kernelspec import install

        install(user=True, kernel_name=name, display_name=f"Python ({sys.executable})")
    return name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, kernel_name, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks work in tempfile.mkdtemp() directories
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    repo = str(NOTEBOOKS_DIR.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed\n{exc}", pytrace=False)
    elapsed = time.monotonic() - start
    (tmp_path / f"{path.stem}.executed.ipynb").write_text(nbformat.writes(nb))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    html = json.dumps(
        [o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    )
    assert "smlaunch-" in html, "the smlaunch results did not display as HTML"
    print(f"{path.name}: {elapsed:.1f} s")
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f} s (budget {BUDGET_S} s)"
