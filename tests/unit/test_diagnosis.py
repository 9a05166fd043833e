"""The diagnosis module's own contracts: the JSON keys, the stored spec, the order of causes, local contexts, and the
"Following a job" fixes (no ETA once a job ended, one final status line, a job with no logs, the region named).

Each cause's recognition is in test_diagnosis_samples.py (real error texts); through moto in
tests/integration/test_diagnosis_moto.py; under real torchrun in tests/integration/test_local_failures.py.
"""

from __future__ import annotations

import yaml

from smlaunch import jobs
from smlaunch.backends import RecordingBackend
from smlaunch.diagnosis import Diagnosis, Evidence, FailureContext, diagnose
from smlaunch.diagnosis.context import parse_line
from smlaunch.diagnosis.stored import TAG_VALUE_MAX, spec_from_tags, spec_tags
from smlaunch.progress import Progress
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

STEP = "step=10 loss=4.0000 step_time_s=0.500 tokens_per_s=1000 mfu=0.100 mem_gib=1.00"


def spec(preset="gpt2-30b", *sets):
    return load_spec(yaml.safe_load(starter(preset)), ["sagemaker.role=arn:aws:iam::123456789012:role/R", *sets])


def test_json_has_exactly_the_issue_keys():
    d = Diagnosis("cuda-oom", "s", None, "f", (Evidence("algo-3", "line"),))
    assert d.to_dict() == {
        "cause": "cuda-oom", "summary": "s", "field": None, "fix": "f", "evidence": [{"host": "algo-3", "line": "line"}]
    }  # fmt: skip


def test_stored_spec_round_trips_in_short_tags_without_the_environment():
    s = spec("gpt2-30b", "sagemaker.environment.WANDB_API_KEY=abcdef0123456789", "sagemaker.tags.team=ml")
    tags = spec_tags(s)
    assert all(len(v) <= TAG_VALUE_MAX for v in tags.values()) and len(tags) <= 3
    back = spec_from_tags([{"Key": k, "Value": v} for k, v in tags.items()] + [{"Key": "team", "Value": "ml"}])
    assert back.model_dump(include={"model", "cluster", "smp", "training", "data", "output", "engine"}) == s.model_dump(
        include={"model", "cluster", "smp", "training", "data", "output", "engine"}
    )
    assert back.sagemaker.environment == {} and back.sagemaker.role is None
    assert spec_from_tags({"team": "ml"}) is None
    assert spec_from_tags({"smlaunch:spec:1": "x"}) is None  # a part missing: no spec, no error


def test_prepare_stores_the_spec_in_the_request_tags_and_keeps_the_job_name():
    s = spec("gpt2-30b", "sagemaker.region=us-east-1", "sagemaker.tags.team=ml")
    prepared = jobs.prepare(s, force=True, job_name=None)
    assert prepared.request.tags["team"] == "ml"
    stored = spec_from_tags(prepared.request.tags)
    assert stored is not None and stored.smp == s.smp
    assert prepared.job_name.endswith("-" + jobs.render(s).fingerprint())  # the name is the rendered spec's


def test_mpi_and_torchrun_prefixes_give_the_rank():
    assert parse_line("algo-2", "[1,11]<stderr>:boom").rank == 11
    assert parse_line("algo-2", "[1,mpirank:3,algo-4]<stdout>:x").host == "algo-4"
    assert parse_line("rank 1", "[rank1]:[E ProcessGroupNCCL.cpp:1] x").rank == 1
    assert parse_line("algo-1", "plain").rank is None


def test_a_rank_exception_beats_the_peers_knock_on_nccl_errors():
    logs = {
        "algo-1": ["[1,0]<stderr>:torch.distributed.DistBackendError: NCCL error in: x.cpp:1, remote process exited"],
        "algo-2": [
            "[1,8]<stderr>:Traceback (most recent call last):",
            '[1,8]<stderr>:  File "/opt/ml/code/train_gpt2.py", line 40, in main',
            '[1,8]<stderr>:  File "/opt/conda/lib/python3.9/site-packages/torch/nn/modules/module.py", line 1, in f',
            "[1,8]<stderr>:KeyError: 'input_ids'",
        ],
    }
    d = diagnose(FailureContext(name="j", status="Failed", logs=logs))
    assert d.cause == "python-exception" and d.field is None
    assert "KeyError: 'input_ids' on algo-2 at /opt/ml/code/train_gpt2.py:40 in main" in d.summary


def test_unknown_shows_the_last_lines_of_every_host_marked_unknown():
    logs = {"algo-10": ["a", "b"], "algo-2": ["c", "d", "e", "f"]}
    d = diagnose(FailureContext(name="j", status="Failed", failure_reason="AlgorithmError: Exit Code: 139", logs=logs))
    assert d.cause == "unknown" and not d.known and d.field is None
    assert [(e.host, e.line) for e in d.evidence] == [("algo-2", "d"), ("algo-2", "e"), ("algo-2", "f"),
                                                      ("algo-10", "a"), ("algo-10", "b")]  # fmt: skip
    assert "last lines (cause unknown)" in "\n".join(d.text_lines())


def test_a_stop_on_request_is_not_a_failure():
    d = diagnose(FailureContext(name="j", status="Stopped", secondary_status="Stopped", transitions=("Stopped",)))
    assert d.cause == "stopped" and d.field is None


def test_local_sigkill_names_the_rank_and_the_signal():
    ctx = FailureContext(name="j", status="Failed", logs={"rank 0": ["ok"], "rank 1": []}, local=True, exit_code=-9,
                         failed_rank=1)  # fmt: skip
    d = diagnose(ctx)
    assert d.cause == "host-oom" and d.summary == "rank 1 was killed by SIGKILL (signal 9): out of host memory?"
    segv = diagnose(FailureContext(name="j", status="Failed", logs={"rank 0": ["x"]}, local=True, exit_code=-11,
                                   failed_rank=0))  # fmt: skip
    assert segv.cause == "signal" and "SIGSEGV (signal 11)" in segv.summary


def test_oom_fix_without_a_stored_spec_says_so():
    line = "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    d = diagnose(FailureContext(name="j", status="Failed", logs={"algo-1": [line]}))
    assert d.cause == "cuda-oom" and d.field == "training.batch_size" and "was not stored" in d.fix


def test_oom_fix_of_a_spec_that_does_not_fit_is_mem001s():
    from smlaunch.costmodel.fixes import memory_findings

    s = spec("gpt2-30b", "training.batch_size=64", "training.activation_checkpointing=none")
    mem001 = memory_findings(s)[0]
    d = diagnose(FailureContext(name="j", status="Failed", spec=s, logs={"algo-1": ["CUDA out of memory."]}))
    assert d.field == mem001.field and d.fix.split(" (")[0] == mem001.fix.split(" (")[0]


def test_the_status_of_a_failed_recorded_job_carries_its_diagnosis_with_the_stored_spec():
    backend = RecordingBackend()
    handle = jobs.submit(spec("gpt2-30b", "sagemaker.region=us-east-1"), backend=backend, force=True)
    backend.add_log(handle.name, "[1,11]<stderr>:torch.cuda.OutOfMemoryError: CUDA out of memory.", host="algo-2")
    assert handle.status().diagnosis is None  # still running
    backend.set_status(handle.name, "Failed", "Failed", FailureReason="AlgorithmError: ExecuteUserScriptError:")
    d = handle.status().diagnosis
    assert d.cause == "cuda-oom" and "algo-2 (rank 11)" in d.summary and "the cost model estimated" in d.summary
    assert d.fix.startswith("set ") and handle.diagnose() == d


def test_progress_summary_leaves_out_the_eta_once_ended():
    p = Progress(max_steps=100)
    p.update(STEP)
    assert "ETA" in p.summary() and "ETA" not in p.summary(eta=False)


def test_follow_prints_one_final_status_line_without_an_eta(capsys, monkeypatch):
    from smlaunch.cli.logs_cmd import follow_job

    monkeypatch.setenv("COLUMNS", "200")
    backend = RecordingBackend()
    handle = jobs.submit(spec("gpt2-30b", "sagemaker.region=us-east-1"), backend=backend, force=True)
    backend.add_log(handle.name, STEP)
    backend.set_status(handle.name, "Completed", "Completed")
    follow_job(handle, poll_s=0)
    out = capsys.readouterr().out
    status_lines = [line for line in out.splitlines() if line.startswith(f"{handle.name}:")]
    assert status_lines == [f"{handle.name}: Completed  step 10/{handle.status().max_steps}  loss 4.0000  1,000 tok/s  "
                            "mfu 10.0%"]  # fmt: skip


def test_follow_of_a_job_without_logs_says_why(capsys):
    import click
    import pytest

    from smlaunch.cli.logs_cmd import follow_job

    backend = RecordingBackend()
    handle = jobs.submit(spec("gpt2-30b", "sagemaker.region=us-east-1"), backend=backend, force=True)
    backend.set_status(handle.name, "Failed", "Failed", FailureReason="CapacityError: Unable to provision requested "
                       "ML compute capacity. Please retry using a different ML instance type.")  # fmt: skip
    with pytest.raises(click.exceptions.Exit):
        follow_job(handle, poll_s=0)
    err = capsys.readouterr().err
    assert "has no log streams: it ended Failed (Failed) before any instance wrote to CloudWatch" in err
    assert "diagnosis  capacity: SageMaker could not provision 16 x ml.p4d.24xlarge" in err
    assert "field    cluster.instance_type" in err and "SMLAUNCH_DEBUG" not in err


def test_the_summary_names_the_region_of_the_aws_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    prepared = jobs.prepare(spec("gpt2-30b"), force=True)
    assert any(line.startswith("cluster") and line.endswith("in eu-west-1") for line in prepared.summary_lines())
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    text = "\n".join(jobs.prepare(spec("gpt2-30b"), force=True).summary_lines())
    assert "(no region: set sagemaker.region or AWS_DEFAULT_REGION)" in text and "(default region)" not in text


def test_the_entry_points_data_error_names_the_channel():
    logs = {"rank 0": [
        "Traceback (most recent call last):",
        '  File "/tmp/run/code/data.py", line 57, in open_shard',
        "data.DataError: /tmp/run/input/data/train/train_000.bin: token id 300 >= vocab_size(256)",
    ]}  # fmt: skip
    d = diagnose(FailureContext(name="j", status="Failed", logs=logs, local=True, spec=spec("gpt2-tiny-local")))
    assert d.cause == "data-error" and d.field == "data.train" and "token id 300 >= vocab_size(256)" in d.summary
    ours = diagnose(FailureContext(name="j", status="Failed", logs={"rank 0": [*logs["rank 0"][:2], "ValueError: x"]},
                                   local=True))  # fmt: skip
    assert ours.cause == "python-exception" and "(smlaunch's entry point)" in ours.summary
