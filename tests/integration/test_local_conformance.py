"""`smlaunch local` against the real thing: the SDK's hyperparameters and the sagemaker-training toolkit's
environment and argv.

1. hyperparameters.json equals what SDK v2's `PyTorch` estimator sends for the same request (user keys,
   distribution keys and the script-mode keys of `_prepare_for_training`, each JSON-encoded).
2. A run through `launch` with a stand-in entry point that dumps `os.environ` and `sys.argv` (under the real
   torchrun, 4 ranks) sees exactly the `SM_*` variables, `CURRENT_HOST`/`SAGEMAKER_JOB_NAME`/`SAGEMAKER_REGION`
   and argv that `sagemaker_training.environment.Environment()` computes on the same tree
   (`SAGEMAKER_BASE_DIR=<run dir>`, `SM_STUDIO_LOCAL_MODE=true`), compared variable by variable. Nothing is
   ignored: SM_NUM_CPUS and SM_NUM_GPUS are counted the same way (cpu_count, nvidia-smi --list-gpus); the only
   legitimate difference would be SM_NUM_GPUS on a machine with too few GPUs for tp x pp, where smlaunch runs
   on CPU and reports 0, so that case is skipped for that one variable.
3. ``engine: torch``: the launcher command and the variables of the toolkit's ``TorchDistributedRunner``
   (``_create_command`` after ``_setup``) on the same tree, for the one local host and for each host of a
   four-host resource config; the EFA instance lists are the toolkit's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml

from smlaunch import container as ct
from smlaunch.local import launch, plan_local
from smlaunch.spec.load import load_spec
from smlaunch.targets import sagemaker_v2
from smlaunch.templates import starter

pytestmark = pytest.mark.integration

DUMP_ENTRY_POINT = """
import json, os, sys
if os.environ.get("RANK", "0") == "0":
    out = os.environ["SM_OUTPUT_DATA_DIR"]
    with open(os.path.join(out, "dump.json"), "w") as f:
        json.dump({"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd()}, f)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"steps": 1, "first_loss": 1.0, "last_loss": 1.0}, f)
    print("step=1 loss=1.0000 step_time_s=0.100 tokens_per_s=10 mfu=0.000 mem_gib=0.10", flush=True)
"""

TOOLKIT_PROBE = """
import json, os
from sagemaker_training import environment
env = environment.Environment()
names = ("CURRENT_HOST", "SAGEMAKER_JOB_NAME", "SAGEMAKER_REGION")
print("PROBE=" + json.dumps({"env": env.to_env_vars(), "argv": env.to_cmd_args(),
                             "plain": {k: os.environ.get(k) for k in names}}))
"""


def spec_with_data(tmp_path, preset="gpt2-tiny-local"):
    spec = load_spec(yaml.safe_load(starter(preset)), {"sagemaker.region": "eu-west-1"})
    return spec


def toolkit_view(run_dir, job_name):
    pytest.importorskip(
        "sagemaker_training",
        reason="sagemaker-training is not installed (pip install sagemaker-training; it builds a C extension with gcc)",
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "SAGEMAKER_BASE_DIR": str(run_dir),
        "SM_STUDIO_LOCAL_MODE": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRAINING_JOB_NAME": job_name,
    }
    proc = subprocess.run(
        [sys.executable, "-c", TOOLKIT_PROBE], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE=")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0].removeprefix("PROBE="))


RUNNER_PROBE = """
import json, os, sys
from sagemaker_training import environment, torch_distributed
env = environment.Environment()
runner = torch_distributed.TorchDistributedRunner(
    env.user_entry_point, env.to_cmd_args(), env.to_env_vars(), int(sys.argv[1]), env.master_hostname,
    env.distribution_hosts, env.current_host, env.network_interface_name, instance_type=env.current_instance_type)
before = dict(os.environ)
cmd = runner._create_command()
print("PROBE=" + json.dumps({"cmd": cmd, "setup": {k: v for k, v in os.environ.items() if before.get(k) != v}}))
"""


def runner_view(run_dir, nproc):
    """What the toolkit's TorchDistributedRunner would run on the tree at ``run_dir`` with ``nproc`` GPUs."""
    pytest.importorskip("sagemaker_training", reason="sagemaker-training is not installed")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "SAGEMAKER_BASE_DIR": str(run_dir),
           "SM_STUDIO_LOCAL_MODE": "true", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER_PROBE, str(nproc)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE=")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0].removeprefix("PROBE="))


def torch_spec(instance_type="ml.p5.48xlarge"):
    return load_spec(
        yaml.safe_load(starter("gpt2-tiny-local")),
        {"engine": "torch", "cluster.instance_type": instance_type, "sagemaker.region": "eu-west-1"},
    )


@pytest.mark.parametrize("instance_type", ["ml.p5.48xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge"])
def test_the_torch_engine_runs_as_the_toolkits_torch_distributed_runner(tmp_path, monkeypatch, instance_type):
    """Under the real torchrun: the entry point's argv and SM_* environment are the toolkit's, the launcher options
    are ``_create_command``'s (plus the local-only ones), and ``_setup``'s NCCL/EFA variables reach every rank."""
    import smlaunch.resources
    from smlaunch.local import LOCAL_TORCHRUN_OPTIONS

    code = tmp_path / "entrypoints"
    code.mkdir()
    (code / "train_gpt2.py").write_text(DUMP_ENTRY_POINT)
    monkeypatch.setattr(smlaunch.resources, "entrypoints_dir", lambda: code)
    plan = plan_local(torch_spec(instance_type), run_dir=tmp_path / "run", num_gpus=0)
    run = launch(plan)
    assert run.ok, run.error_tail
    seen = json.loads((plan.run_dir / "output" / "data" / "dump.json").read_text())
    runner = runner_view(plan.run_dir, plan.nproc)
    toolkit = toolkit_view(plan.run_dir, plan.job_name)

    cmd = plan.command()
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    local_only = [*LOCAL_TORCHRUN_OPTIONS, "--log-dir", str(plan.run_dir / "logs" / "ranks"), "--tee", "3"]
    start = cmd.index(local_only[0])
    assert cmd[start : start + len(local_only)] == local_only
    assert ["torchrun", *cmd[3:start], *cmd[start + len(local_only) :]] == runner["cmd"]
    assert runner["setup"] and {k: seen["env"][k] for k in runner["setup"]} == runner["setup"]
    assert seen["argv"] == toolkit["argv"] == runner["cmd"][runner["cmd"].index("train_gpt2.py") + 1 :]
    ours = {k: v for k, v in seen["env"].items() if k.startswith("SM_")}
    assert ours == toolkit["env"]


def test_each_host_of_a_four_host_job_gets_the_runners_command(tmp_path):
    """Pure: the launcher options of each host of 4 x ml.p5.48xlarge (algo-1 ... algo-4) against the runner."""
    plan = plan_local(torch_spec(), run_dir=tmp_path / "run", num_gpus=0)
    code = tmp_path / "code"
    code.mkdir()
    (code / "train_gpt2.py").write_text("")
    for current in range(4):
        resources = ct.resource_config("ml.p5.48xlarge", hosts=4, current=current)
        container = replace(plan.container, base_dir=tmp_path / f"host{current}", resource_config=resources)
        ct.write_tree(container, channels={}, code_from=code)
        runner = runner_view(container.base_dir, 8)
        ours = ["torchrun", *ct.torchrun_options(resources, processes_per_host=8), "train_gpt2.py"]
        assert runner["cmd"][: len(ours)] == ours, current
        assert runner["setup"] == ct.torch_distributed_environment(resources)


def test_the_efa_instance_lists_are_the_toolkits():
    toolkit = pytest.importorskip("sagemaker_training")
    assert ct.EFA_NCCL_INSTANCES == set(toolkit.SM_EFA_NCCL_INSTANCES)
    assert ct.EFA_RDMA_INSTANCES == set(toolkit.SM_EFA_RDMA_INSTANCES)


@pytest.mark.parametrize("preset", ["gpt2-60b", "gpt2-30b-p5"])
def test_hyperparameters_json_equals_what_sdk_v2_sends(tmp_path, preset):
    pytest.importorskip("sagemaker", reason="the SageMaker SDK is not installed (pip install 'smlaunch[sagemaker]')")
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    import boto3
    import sagemaker
    from sagemaker.pytorch import PyTorch

    spec = load_spec(yaml.safe_load(starter(preset)), {"sagemaker.region": "eu-west-1"})
    plan = plan_local(spec, run_dir=tmp_path / "run", num_gpus=0)
    boto = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
    session = sagemaker.Session(
        boto_session=boto,
        default_bucket="smlaunch-test-bucket",
        sagemaker_config={"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}},
    )
    kwargs = sagemaker_v2.estimator_kwargs(plan.request)
    kwargs["role"] = "arn:aws:iam::123456789012:role/R"
    estimator = PyTorch(**kwargs, sagemaker_session=session)
    estimator._current_job_name = plan.job_name  # what _prepare_for_training sets before the script-mode keys
    estimator._script_mode_hyperparam_update(plan.request.source_dir, plan.request.entry_point)
    assert plan.container.hyperparameters == estimator.hyperparameters()


def test_environment_and_argv_equal_the_toolkit(tmp_path, monkeypatch):
    import smlaunch.resources

    code = tmp_path / "entrypoints"
    code.mkdir()
    (code / "train_gpt2.py").write_text(DUMP_ENTRY_POINT)
    monkeypatch.setattr(smlaunch.resources, "entrypoints_dir", lambda: code)
    spec = load_spec(yaml.safe_load(starter("gpt2-tiny-local")), {"sagemaker.region": "eu-west-1"})
    plan = plan_local(spec, run_dir=tmp_path / "run")
    steps = []
    run = launch(plan, on_step=steps.append)
    assert run.ok, run.error_tail
    assert steps == [{"step": 1, "loss": 1.0, "step_time_s": 0.1, "tokens_per_s": 10.0, "mfu": 0.0, "mem_gib": 0.1}]
    seen = json.loads((plan.run_dir / "output" / "data" / "dump.json").read_text())
    toolkit = toolkit_view(plan.run_dir, plan.job_name)

    ours = {k: v for k, v in seen["env"].items() if k.startswith("SM_")}
    theirs = dict(toolkit["env"])
    if plan.device == "cpu" and plan.num_gpus:  # too few GPUs for tp x pp: smlaunch runs on CPU, reports 0
        ours.pop("SM_NUM_GPUS")
        theirs.pop("SM_NUM_GPUS")
    assert sorted(ours) == sorted(theirs)
    for name in sorted(theirs):
        if name == "SM_TRAINING_ENV":
            assert json.loads(ours[name]) == json.loads(theirs[name])
        assert ours[name] == theirs[name], name
    for name, value in toolkit["plain"].items():
        assert seen["env"][name] == value, name
    assert seen["argv"] == toolkit["argv"]
    assert seen["cwd"] == str(plan.run_dir / "code")
    assert seen["env"]["SAGEMAKER_BASE_DIR"] == str(plan.run_dir)
    assert (plan.run_dir / "input" / "data" / "train" / "train_000.bin").is_file()


def test_environment_function_equals_the_toolkit_for_every_template(tmp_path):
    """The pure function on each reference template's tree (no torchrun), including S3-replaced channels."""
    data = tmp_path / "tokens"
    data.mkdir()
    for preset in ("gpt2-10b", "gpt2-30b", "gpt2-60b"):
        spec = load_spec(yaml.safe_load(starter(preset)))
        plan = plan_local(spec, run_dir=tmp_path / preset, data={"train": data, "validation": data}, num_gpus=0)
        ct.write_tree(plan.container, channels=plan.channels, code_from=data)
        toolkit = toolkit_view(plan.run_dir, plan.job_name)
        ours = ct.sm_environment(
            plan.container, num_gpus=toolkit_gpus(toolkit), num_cpus=ct.num_cpus(), job_name=plan.job_name
        )
        assert {k: v for k, v in ours.items() if k.startswith("SM_")} == toolkit["env"], preset
        assert plan.argv() == toolkit["argv"], preset


def toolkit_gpus(toolkit) -> int:
    return int(toolkit["env"]["SM_NUM_GPUS"])
