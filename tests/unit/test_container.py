"""The emulated container of `smlaunch local`: files, SM_* variables, argv, processes, data channels, --docker.

The toolkit itself is the reference in tests/integration/test_local_conformance.py; these tests pin the
formats without it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from smlaunch import container as ct
from smlaunch.errors import LocalRunError
from smlaunch.local import docker_missing, plan_local, resolve_channels, resolve_nproc, run_docker
from smlaunch.resources import sample_data_dir
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter


def template(preset: str, **overrides):
    return load_spec(yaml.safe_load(starter(preset)), overrides)


@pytest.fixture
def plan(tmp_path):
    return plan_local(template("gpt2-60b"), run_dir=tmp_path / "run", num_gpus=0)


def test_user_args_format_like_the_toolkit():
    args = ct.user_args({"bb": True, "lr": 1e-05, "mp_parameters": {"ddp": True, "b": 2}, "s": "each"})
    assert args == ["--bb", "True", "--lr", "1e-05", "--mp_parameters", "b=2,ddp=True", "-s", "each"]


def test_hyperparameters_are_json_strings_with_the_sdk_keys(plan):
    hps = plan.container.hyperparameters
    assert all(isinstance(v, str) for v in hps.values())
    assert hps["sagemaker_program"] == '"train_gpt2.py"'
    assert hps["sagemaker_mpi_enabled"] == "true"
    assert hps["sagemaker_mpi_num_of_processes_per_host"] == "16"
    assert hps["sagemaker_distributed_dataparallel_enabled"] == "false"
    assert hps["sagemaker_instance_type"] == '"ml.p4d.24xlarge"'
    assert hps["sagemaker_container_log_level"] == "20"
    assert json.loads(hps["sagemaker_job_name"]) == plan.job_name
    assert json.loads(hps["mp_parameters"])["partitions"] == 2
    assert hps["activation_strategy"] == '"each"'
    assert hps["synthetic"] == "1"


def test_environment_follows_the_contract(plan):
    env = plan.environment(base={"PATH": "/bin", "SM_STALE": "x", "PYTHONPATH": "/p"})
    base = str(plan.run_dir)
    assert "SM_STALE" not in env
    assert env["SAGEMAKER_BASE_DIR"] == base
    assert env["SM_MODEL_DIR"] == f"{base}/model"
    assert env["SM_OUTPUT_DATA_DIR"] == f"{base}/output/data"
    assert env["SM_CHANNELS"] == "[]"
    assert env["SM_HOSTS"] == '["algo-1"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_HP_TENSOR_PARALLEL_DEGREE"] == "8"
    assert json.loads(env["SM_HP_MP_PARAMETERS"])["tensor_parallel_degree"] == 8
    assert env["SM_FRAMEWORK_PARAMS"].startswith('{"sagemaker_distributed_dataparallel_enabled":false,')
    assert json.loads(env["SM_USER_ARGS"]) == plan.argv()
    assert json.loads(env["SM_TRAINING_ENV"])["hyperparameters"]["max_steps"] == 5
    assert env["SM_NUM_GPUS"] == "0"
    assert env["PYTHONPATH"] == f"{base}/code:/p"
    assert env["TORCHELASTIC_ERROR_FILE"] == f"{base}/logs/error.json"
    assert "sagemaker_program" not in json.loads(env["SM_HPS"])


def test_command_is_torchrun_with_the_toolkit_argv(plan):
    cmd = plan.command()
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--nproc-per-node", "16", "--standalone"]
    script = cmd.index("train_gpt2.py")
    args = cmd[script + 1 :]
    assert args[args.index("--tensor_parallel_degree") + 1] == "8"
    assert args[args.index("--mp_parameters") + 1].startswith("active_microbatches=2,auto_partition=True,")
    assert not any(a.startswith("--sagemaker_") for a in args)


def test_write_tree(plan, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    container = ct.Container(
        plan.run_dir,
        {"a": "1"},
        ct.resource_config("ml.c5.xlarge"),
        ct.input_data_config(["train"]),
    )
    code = tmp_path / "code"
    code.mkdir()
    (code / "train_gpt2.py").write_text("print()\n")
    ct.write_tree(container, channels={"train": data}, code_from=code)
    base = plan.run_dir
    for sub in ("model", "output/data", "output/intermediate", "checkpoints", "code/train_gpt2.py"):
        assert (base / sub).exists(), sub
    assert (base / "input/data/train").resolve() == data.resolve()
    config = json.loads((base / "input/config/inputdataconfig.json").read_text())
    assert config == {
        "train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    }
    ct.write_tree(container, channels={"train": data}, code_from=code)  # idempotent


@pytest.mark.parametrize(
    ("tp", "pp", "nproc", "gpus", "expected"),
    [
        (8, 2, None, 0, (16, "cpu")),
        (2, 2, None, 8, (8, "cuda")),
        (2, 2, None, 6, (4, "cuda")),
        (8, 1, None, 4, (8, "cpu")),
        (2, 1, 6, 0, (6, "cpu")),
    ],
)
def test_resolve_nproc(tp, pp, nproc, gpus, expected):
    assert resolve_nproc(tp, pp, nproc=nproc, num_gpus=gpus)[:2] == expected


def test_nproc_must_be_a_multiple_of_the_model_parallel_group():
    with pytest.raises(LocalRunError, match=r"--nproc 6 is not a multiple of tp\(2\) x pp\(2\) = 4"):
        resolve_nproc(2, 2, nproc=6, num_gpus=0)


def test_s3_channel_needs_local_data():
    spec = template("gpt2-60b", **{"data.train": "s3://bucket/tokens"})
    with pytest.raises(LocalRunError, match=r"data.train is s3://bucket/tokens: a local run cannot read S3"):
        resolve_channels(spec, None)


def test_data_dir_replaces_s3_and_turns_synthetic_off(tmp_path):
    spec = template("gpt2-60b", **{"data.train": "s3://bucket/tokens"})
    plan = plan_local(spec, data=tmp_path, run_dir=tmp_path / "run", num_gpus=0)
    assert plan.channels == {"train": tmp_path.resolve()}
    assert plan.request.hyperparameters["synthetic"] == 0
    spec = template("gpt2-60b")  # no train channel: synthetic, until --data gives one
    plan = plan_local(spec, data={"train": str(tmp_path)}, run_dir=tmp_path / "run", num_gpus=0)
    assert plan.request.hyperparameters["synthetic"] == 0


def test_local_sample_is_the_shipped_dataset():
    assert resolve_channels(template("gpt2-tiny-local"), None) == {"train": sample_data_dir().resolve()}


def test_missing_local_dir_is_an_error(tmp_path):
    spec = template("gpt2-tiny-local", **{"data.train": f"local:{tmp_path}/nope"})
    with pytest.raises(LocalRunError, match="is not a directory"):
        resolve_channels(spec, None)


def test_relative_local_paths_are_relative_to_the_spec_file(tmp_path):
    (tmp_path / "tokens").mkdir()
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local").replace("local:sample", "local:tokens"))
    assert resolve_channels(load_spec(job), None) == {"train": (tmp_path / "tokens").resolve()}


def test_docker_missing_is_injectable():
    assert docker_missing(which=lambda name: None) == "the `docker` CLI is not on PATH"

    class Failed:
        returncode = 1

    lack = docker_missing(
        which=lambda name: "/usr/bin/docker" if name == "docker" else None, run=lambda *a, **k: Failed()
    )
    assert "docker compose" in lack

    class Ok:
        returncode = 0

    assert docker_missing(which=lambda name: "/usr/bin/docker", run=lambda *a, **k: Ok()) is None


def test_docker_mode_without_docker_says_what_is_missing(plan):
    with pytest.raises(LocalRunError, match=r"needs Docker and Docker Compose: the `docker` CLI is not on PATH"):
        run_docker(plan, missing=lambda: "the `docker` CLI is not on PATH")


def test_plan_local_touches_nothing(tmp_path):
    plan_local(template("gpt2-tiny-local"), run_dir=tmp_path / "run", num_gpus=0)
    assert not (tmp_path / "run").exists()


def torch_plan(tmp_path, instance_type="ml.p5.48xlarge"):
    spec = load_spec(
        yaml.safe_load(starter("gpt2-tiny-local")),
        {"engine": "torch", "cluster.instance_type": instance_type, "sagemaker.region": "eu-west-1"},
    )
    return plan_local(spec, run_dir=tmp_path / "run", num_gpus=0)


def test_the_torch_engine_is_launched_as_the_toolkits_torchrun(tmp_path):
    plan = torch_plan(tmp_path)
    cmd = plan.command()
    assert cmd[1:8] == ["-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "4", "--standalone"]
    args = cmd[cmd.index("train_gpt2.py") + 1 :]
    assert args[args.index("--engine") + 1] == "torch"
    assert "--mp_parameters" not in args and not any(a.startswith("--sagemaker_") for a in args)
    hps = plan.container.hyperparameters
    assert hps["sagemaker_torch_distributed_enabled"] == "true"
    assert not {k for k in hps if k.startswith(("sagemaker_mpi", "mp_", "sagemaker_distributed"))}
    env = plan.environment({})
    assert (env["FI_PROVIDER"], env["FI_EFA_USE_DEVICE_RDMA"], env["RDMAV_FORK_SAFE"]) == ("efa", "1", "1")
    assert (env["NCCL_SOCKET_IFNAME"], env["NCCL_PROTO"]) == ("eth0", "simple")
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {
        "sagemaker_torch_distributed_enabled": True,
        "sagemaker_instance_type": "ml.p5.48xlarge",
    }


def test_efa_variables_follow_the_instance_type(tmp_path):
    g5 = torch_plan(tmp_path, "ml.g5.12xlarge").environment({})
    assert "FI_PROVIDER" not in g5 and "FI_EFA_USE_DEVICE_RDMA" not in g5 and g5["NCCL_PROTO"] == "simple"
    big = ct.torch_distributed_environment(ct.resource_config("ml.g5.48xlarge"))
    assert big["FI_PROVIDER"] == "efa" and "FI_EFA_USE_DEVICE_RDMA" not in big


def test_several_hosts_name_the_first_as_master_and_rank_each_host():
    options = [ct.torchrun_options(ct.resource_config("ml.p5.48xlarge", hosts=4, current=i), processes_per_host=8)
               for i in range(4)]  # fmt: skip
    assert options[0] == ["--nnodes", "4", "--nproc_per_node", "8", "--master_addr", "algo-1", "--master_port", "7777",
                          "--node_rank", "0"]  # fmt: skip
    assert [o[-1] for o in options] == ["0", "1", "2", "3"] and {o[5] for o in options} == {"algo-1"}
    assert ct.resource_config("ml.p5.48xlarge", hosts=4, current=2)["current_host"] == "algo-3"
