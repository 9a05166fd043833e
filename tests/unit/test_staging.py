"""What goes up and what gets copied: the one staging of submit and local (smlaunch.backends.source on
smlaunch.source_tree), `-o` files that are never overwritten without --force nor written through a link, and the
run directory and channel names of `smlaunch local`. Real folders, links, FIFOs and sockets in tmp_path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import smlaunch.source_tree as tree
from smlaunch.backends.source import staged_source
from smlaunch.errors import LocalRunError, SubmitError
from smlaunch.local_run_dir import MARKER, check_channel_name, claim_run_dir


def own_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text("print('train')\n")
    (root / "lib").mkdir()
    (root / "lib" / "util.py").write_text("X = 1\n")
    (root / ".env").write_text("TOKEN=1\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "credentials.json").write_text("{}\n")
    return root


def staged_files(folder: Path, entry: str = "train.py", *, own: bool = True) -> list[str]:
    with staged_source(folder, entry, own=own) as copy:
        assert all(p.is_file() and not p.is_symlink() for p in copy.rglob("*") if not p.is_dir())
        return sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())


def test_fifos_and_sockets_are_skipped_not_read(tmp_path):
    root = own_folder(tmp_path / "src")
    os.mkfifo(root / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        manifest = tree.scan(root)
        reasons = dict(manifest.excluded)
        assert reasons["pipe"] == reasons["sock"] == "not a regular file (FIFO, socket or device)"
        assert staged_files(root) == ["lib/util.py", "train.py"]  # no hang on the FIFO, no shutil.Error
    finally:
        server.close()


def test_links_that_leave_the_folder_are_refused(tmp_path):
    root = own_folder(tmp_path / "src")
    (root / "passwd.py").symlink_to("/etc/passwd")
    with pytest.raises(SubmitError, match=r"passwd\.py is a symlink to /etc/passwd, outside source_dir"):
        staged_files(root)
    (root / "passwd.py").unlink()
    (root / "big").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SubmitError, match="outside source_dir"):
        staged_files(root)


def test_a_hard_link_to_a_file_outside_is_refused_one_inside_is_not(tmp_path):
    root = own_folder(tmp_path / "src")
    outside = tmp_path / "secret_notes.py"
    outside.write_text("KEY = 'x'\n")
    os.link(outside, root / "notes.py")
    assert ("notes.py", "hard link (2 links, 1 inside)") in tree.scan(root).escaping_links
    with pytest.raises(SubmitError, match=r"notes\.py is hard link \(2 links, 1 inside\), outside source_dir"):
        staged_files(root)
    (root / "notes.py").unlink()
    os.link(root / "train.py", root / "lib" / "same.py")  # both links inside: fine
    assert staged_files(root) == ["lib/same.py", "lib/util.py", "train.py"]


def test_dangling_links_and_secrets_stay_behind(tmp_path):
    root = own_folder(tmp_path / "src")
    (root / "gone.py").symlink_to(root / "nowhere.py")
    manifest = tree.scan(root)
    assert dict(manifest.excluded)["gone.py"] == "dangling or unreadable link"
    assert {".env", ".git", "credentials.json"} <= {rel for rel, _ in manifest.excluded}
    assert staged_files(root) == ["lib/util.py", "train.py"]


def test_the_total_size_is_capped_with_a_clear_message(tmp_path, monkeypatch):
    root = own_folder(tmp_path / "src")
    (root / "blob.bin").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(tree, "MAX_TOTAL_BYTES", 1024)
    with pytest.raises(SubmitError, match=r"holds 4\.\d KiB to upload .* over the 1\.0 KiB cap") as caught:
        staged_files(root)
    assert caught.value.field == "entry_point.source_dir"


def entry_points(root: Path) -> Path:
    """A folder shaped like smlaunch's entrypoints/ with what must not go up next to it."""
    root.mkdir()
    for name in ("train_gpt2.py", "model.py"):
        (root / name).write_text("print(1)\n")
    (root / "test_model.py").write_text("def test(): pass\n")
    (root / "credentials.py").write_text("KEY = 'x'\n")  # a scratch credentials file
    (root / "notes.txt").write_text("x\n")
    (root / "sub").mkdir()
    (root / "sub" / "deep.py").write_text("x = 1\n")
    return root


def test_the_default_entry_points_go_through_the_same_staging(tmp_path):
    root = entry_points(tmp_path / "entrypoints")
    os.link(root / "model.py", tmp_path / "cache-copy.py")  # an installer's hard link (uv's cache): allowed
    assert staged_files(root, "train_gpt2.py", own=False) == ["model.py", "train_gpt2.py"]
    (root / "evil.py").symlink_to("/etc/passwd")
    with pytest.raises(SubmitError, match="outside source_dir"):
        staged_files(root, "train_gpt2.py", own=False)
    (root / "evil.py").unlink()
    with open(root / "huge.py", "wb") as f:
        f.truncate(tree.MAX_FILE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(SubmitError, match=r"huge\.py is 50\.0 MiB, over the 50 MiB cap"):
        staged_files(root, "train_gpt2.py", own=False)


def test_the_real_entry_points_stage_cleanly():
    from smlaunch.resources import entrypoints_dir

    files = staged_files(entrypoints_dir(), "train_gpt2.py", own=False)
    assert "train_gpt2.py" in files and all("/" not in f and f.endswith(".py") for f in files)
    assert not [f for f in files if f.startswith("test_")]


# ------------------------------------------------------------------------------------------ -o files


def smlaunch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smlaunch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


PLAN = ["plan", "--model", "gpt2-xl", "--instance-type", "ml.p4d.24xlarge", "--instance-count", "1", "--top", "1"]


@pytest.mark.parametrize("command", [PLAN, ["schema"], ["init"]], ids=["plan", "schema", "init"])
def test_o_never_overwrites_without_force(tmp_path, command):
    out = tmp_path / "out.yaml"
    out.write_text("mine\n")
    done = smlaunch(*command, "-o", str(out), cwd=tmp_path)
    assert done.returncode == 1 and f"{out} exists" in done.stderr and "--force" in done.stderr
    assert out.read_text() == "mine\n"
    done = smlaunch(*command, "-o", str(out), "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text() != "mine\n"


@pytest.mark.parametrize("command", [PLAN, ["schema"], ["init"]], ids=["plan", "schema", "init"])
def test_o_never_writes_through_a_link(tmp_path, command):
    target = tmp_path / "elsewhere" / "created.yaml"
    target.parent.mkdir()
    link = tmp_path / "job.yaml"
    link.symlink_to(target)  # dangling
    for force in ([], ["--force"]):
        done = smlaunch(*command, "-o", str(link), *force, cwd=tmp_path)
        assert done.returncode == 1 and "symbolic link" in done.stderr, done.stderr
        assert not target.exists()


# ------------------------------------------------------------------------------------------ local run dirs


def test_a_foreign_non_empty_run_dir_is_refused(tmp_path):
    foreign = tmp_path / "project"
    (foreign / "code").mkdir(parents=True)
    (foreign / "code" / "mine.py").write_text("keep me\n")
    with pytest.raises(LocalRunError, match="not a smlaunch run directory") as caught:
        claim_run_dir(foreign)
    assert "code/ and input/data/<channel>/" in caught.value.message
    assert (foreign / "code" / "mine.py").read_text() == "keep me\n"
    claim_run_dir(tmp_path / "new")  # new, empty, or marked: fine
    assert (tmp_path / "new" / MARKER).is_file()
    (tmp_path / "new" / "code").mkdir()
    claim_run_dir(tmp_path / "new")  # a run directory again


def test_channel_names_are_checked_before_anything_is_replaced(tmp_path):
    from smlaunch.local import resolve_channels
    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    for bad in ("..", ".", "a/b", "x" * 65, "sp ace"):
        with pytest.raises(LocalRunError, match="data channel name"):
            check_channel_name(bad)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(LocalRunError, match=r"data channel name '\.\.'") as caught:
        resolve_channels(load_spec(yaml.safe_load(starter("gpt2-tiny-local"))), {"..": data})
    assert caught.value.field == "data..."
    done = smlaunch("local", "job.yaml", "--data", f"..={data}", "--run-dir", "run", cwd=_job_dir(tmp_path))
    assert done.returncode == 1 and "data channel name '..'" in done.stderr and "Traceback" not in done.stderr


def _job_dir(tmp_path: Path) -> Path:
    from smlaunch.templates import starter

    (tmp_path / "job.yaml").write_text(starter("gpt2-tiny-local"))
    return tmp_path


def test_the_summary_of_a_rerun_that_trained_no_step(tmp_path):
    """`local` again on a finished run directory resumes at the last step and trains none: metrics.json holds
    nulls (as entrypoints/train_gpt2.py writes them), and the summary says '-' instead of a TypeError."""
    from rich.console import Console

    from smlaunch.cli.local_cmd import print_result
    from smlaunch.local import plan_local
    from smlaunch.local_results import LocalRun
    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    plan = plan_local(load_spec(yaml.safe_load(starter("gpt2-tiny-local"))), run_dir=tmp_path / "run", num_gpus=0)
    metrics = {"steps": 0, "start_step": 2, "first_loss": None, "last_loss": None, "tokens_per_s": 0.0,
               "step_time_s": 0.0, "layout": {"tp": 2, "pp": 2, "dp": 1}, "checkpoint": "step_2",
               "peak_mem_gib_per_rank": [0.3, 0.3]}  # fmt: skip
    run = LocalRun(plan, 0, 44.5, [], metrics, None, None, "")
    console = Console(record=True, width=200)
    print_result(console, run)
    text = console.export_text()
    assert "0 (from step 2)" in text and "- -> -" in text
