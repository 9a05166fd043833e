"""`smlaunch local --force` runs a spec with validation errors under real torchrun, naming each one first."""

from __future__ import annotations

import copy

import pytest
import yaml

from smlaunch.cli import main
from smlaunch.templates import starter

pytestmark = pytest.mark.integration


def test_force_names_each_overridden_error_and_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    data = copy.deepcopy(yaml.safe_load(starter("gpt2-tiny-local")))
    # bf16 on a V100 host is an error (CLU006) that a CPU run survives: it trains in fp32 here
    data["cluster"]["instance_type"] = "ml.p3.16xlarge"
    data["smp"]["bf16"] = True
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    assert main(["local", str(path), "--steps", "2", "--run-dir", str(run_dir)]) == 1
    assert not run_dir.exists()
    capsys.readouterr()
    assert main(["local", str(path), "--steps", "2", "--force", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "--force: running despite CLU006 smp.bf16" in out
    assert (run_dir / "output" / "data" / "metrics.json").is_file()
