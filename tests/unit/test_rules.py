"""The rulebook: one failing and one passing case per rule, the reference configurations, report mechanics."""

from __future__ import annotations

import copy

import pytest

from smlaunch.layout import resolve
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, check, rule_ids

BASE = {  # GPT-2 30B reference row (smp-v1.md §7) plus data and checkpoints: no findings at all
    "name": "gpt2-30b",
    "model": {"preset": "gpt2-30b"},
    "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": 16},
    "smp": {"tensor_parallel_degree": 8, "ddp": True, "prescaled_batch": True, "shard_optimizer_state": True},
    "training": {"batch_size": 32, "max_steps": 100, "activation_checkpointing": "each"},
    "data": {"train": "s3://bucket/gpt2/train"},
    "output": {"checkpoint_s3_uri": "s3://bucket/gpt2/checkpoints"},
}
OURS = rule_ids()  # MEM001 is the cost model's (smlaunch.validation composes it), not a rule
NO_TP = {"smp.tensor_parallel_degree": 1, "smp.shard_optimizer_state": False}
SDP = {"smp.sharded_data_parallel_degree": 8, "smp.shard_optimizer_state": False}
OFFLOAD = {"smp.offload_activations": True, "smp.partitions": 2, "smp.microbatches": 4}


def spec_of(overrides=None, base=BASE):
    return load_spec(copy.deepcopy(base), overrides or {})


def run(rule_id, overrides=None):
    spec = spec_of(overrides)
    return RULES[rule_id](spec, resolve(spec))


# (rule, overrides, severity, field, part of the message, fix)
FAILING = [
    (
        "CLU001",
        {"cluster.instance_type": "ml.p4d.24xlarg"},
        "error",
        "cluster.instance_type",
        "instance_type ml.p4d.24xlarg is not in smlaunch's catalog; did you mean ml.p4d.24xlarge?",
        "set cluster.instance_type: ml.p4d.24xlarge",
    ),
    (
        "CLU002",
        {"cluster.instance_type": "ml.p5.48xlarge"},
        "error",
        "cluster.instance_type",
        "ml.p5.48xlarge: SMP v1 has no p5 support; the SageMaker SDK raises",
        "set engine: torch (the PyTorch-native engine runs on p5), or cluster.instance_type: ml.p4d.24xlarge "
        "(ml.p4de.24xlarge for 80 GB A100s)",
    ),
    (
        "CLU002",
        {"cluster.instance_type": "ml.g5.48xlarge"},
        "error",
        "cluster.instance_type",
        "ml.g5.48xlarge is not supported by SMP v1 (supported: ml.p4d.24xlarge,",
        "set engine: torch (the PyTorch-native engine runs on ml.g5.48xlarge), or cluster.instance_type: "
        "ml.p3dn.24xlarge (8 x V100-SXM2-32GB)",
    ),
    (
        "CLU003",
        {"cluster.processes_per_host": 16},
        "error",
        "cluster.processes_per_host",
        "processes_per_host(16) > GPUs per instance(8) on ml.p4d.24xlarge: MPI fails after launch",
        "set cluster.processes_per_host: 8 (or remove it: the default is the GPU count)",
    ),
    (
        "CLU004",
        {"cluster.processes_per_host": 4, "smp.tensor_parallel_degree": 4},
        "warning",
        "cluster.processes_per_host",
        "processes_per_host(4) < GPUs per instance(8) on ml.p4d.24xlarge: 64 GPU(s) idle but billed",
        "set cluster.processes_per_host: 8",
    ),
    (
        "CLU005",
        {"cluster.instance_type": "ml.p3.16xlarge", **NO_TP},
        "warning",
        "cluster.instance_type",
        "instance_count(16) x ml.p3.16xlarge, which has no EFA (25 Gbit/s)",
        "set cluster.instance_type: ml.p3dn.24xlarge (EFA, 100 Gbit/s)",
    ),
    (
        "SMP001",
        {"smp.tensor_parallel_degree": 6, "model.num_heads": 48, "model.hidden_width": 6144},
        "warning",
        "smp.tensor_parallel_degree",
        "tensor_parallel_degree(6) is not a power of two",
        "set smp.tensor_parallel_degree: 8",
    ),
    (
        "SMP002",
        {"smp.tensor_parallel_degree": 16},
        "error",
        "smp.tensor_parallel_degree",
        "tensor_parallel_degree(16) > GPUs per instance(8) on ml.p4d.24xlarge: tensor parallelism would cross nodes",
        "set smp.tensor_parallel_degree: 8",
    ),
    (
        "SMP002",
        {"cluster.processes_per_host": 4},
        "error",
        "smp.tensor_parallel_degree",
        "tensor_parallel_degree(8) > processes_per_host(4) on ml.p4d.24xlarge",
        "set smp.tensor_parallel_degree: 4",
    ),
    (
        "SMP003",
        {"cluster.instance_count": 2, "smp.tensor_parallel_degree": 4, "smp.partitions": 3},
        "error",
        "smp.pipeline_parallel_degree",
        "world(16) = instance_count(2) x processes_per_host(8) is not divisible by tp(4) x pp(3) = 12",
        "set smp.pipeline_parallel_degree: 4 (or cluster.instance_count: 3)",
    ),
    (
        "SMP003",
        {"cluster.instance_count": 1, "cluster.processes_per_host": 6, "smp.tensor_parallel_degree": 4},
        "error",
        "smp.tensor_parallel_degree",
        "world(6) = instance_count(1) x processes_per_host(6) is not divisible by tp(4) x pp(1) = 4",
        "set smp.tensor_parallel_degree: 2 (or cluster.instance_count: 2)",
    ),
    (
        "SMP004",
        {"smp.partitions": 3, "cluster.instance_count": 3},
        "warning",
        "smp.pipeline_parallel_degree",
        "pipeline_parallel_degree(3) does not divide GPUs per host(8)",
        "set smp.pipeline_parallel_degree: 4",
    ),
    (
        "SMP005",
        {"smp.placement_strategy": "spread"},
        "error",
        "smp.placement_strategy",
        "tp(8) ranks of a tensor-parallel group sit world(128) / tp(8) = 16 ranks apart, across 8 nodes",
        "set smp.placement_strategy: cluster",
    ),
    (
        "SMP006",
        {"smp.placement_strategy": "DPT"},
        "error",
        "smp.placement_strategy",
        "placement_strategy DPT: SDK v2 raises 'placement_strategy must be a value in: ['spread', 'cluster']'; "
        "it is `cluster`",
        "set smp.placement_strategy: cluster",
    ),
    (
        "SMP006",
        {"smp.placement_strategy": "TPD", "cluster.instance_count": 1, "smp.shard_optimizer_state": False},
        "error",
        "smp.placement_strategy",
        "it is `spread`",
        "set smp.placement_strategy: spread",
    ),
    (
        "SMP006",
        {"smp.placement_strategy": "TPD"},
        "error",
        "smp.placement_strategy",
        "it is `spread`, which would put tensor-parallel ranks on different nodes",
        "set smp.placement_strategy: cluster",
    ),
    (
        "SMP006",
        {"smp.placement_strategy": "PDT"},
        "error",
        "smp.placement_strategy",
        "SMP v1 has no SDK name for it",
        "set smp.placement_strategy: cluster",
    ),
    (
        "SMP007",
        {"smp.partitions": 2, "smp.prescaled_batch": False},
        "warning",
        "smp.prescaled_batch",
        "tp(8) x pp(2) without prescaled_batch",
        "set smp.prescaled_batch: true (training.batch_size then counts per model-parallel group)",
    ),
    (
        "SMP008",
        {"smp.partitions": 2, "smp.microbatches": 4, "training.batch_size": 34},
        "error",
        "training.batch_size",
        "batch_size(34) is not divisible by microbatches(4): 34 / 4 = 8.50 samples per microbatch",
        "set training.batch_size: 36 (a multiple of microbatches 4)",
    ),
    (
        "SMP008",
        {"smp.partitions": 2, "smp.microbatches": 5, "training.batch_size": 3},
        "error",
        "training.batch_size",
        "batch_size(3) is not divisible by microbatches(5)",
        "set training.batch_size: 5 (a multiple of microbatches 5)",
    ),
    (
        "SMP009",
        {"smp.partitions": 2, "smp.microbatches": 4, "smp.active_microbatches": 6},
        "warning",
        "smp.active_microbatches",
        "active_microbatches(6) > microbatches(4): SMP caps it at 4 (the default is pp + 2 = 4, also capped)",
        "set smp.active_microbatches: 4",
    ),
    (
        "SMP010",
        {"smp.microbatches": 4},
        "warning",
        "smp.microbatches",
        "microbatches(4) > 1 with pipeline_parallel_degree(1)",
        "set smp.microbatches: 1 (or smp.pipeline_parallel_degree: 2)",
    ),
    (
        "SMP011",
        {**OFFLOAD, "training.activation_checkpointing": "none"},
        "error",
        "training.activation_checkpointing",
        "offload_activations with activation_checkpointing none",
        "set training.activation_checkpointing: each (or smp.offload_activations: false)",
    ),
    (
        "SMP012",
        {**OFFLOAD, "smp.microbatches": 1},
        "error",
        "smp.microbatches",
        "offload_activations with microbatches(1)",
        "set smp.microbatches: 2 (divides batch_size 32), or smp.offload_activations: false",
    ),
    (
        "SMP013",
        {**OFFLOAD, "smp.partitions": 1},
        "warning",
        "smp.offload_activations",
        "offload_activations with pipeline_parallel_degree(1)",
        "set smp.offload_activations: false (or smp.pipeline_parallel_degree: 2)",
    ),
    (
        "SMP014",
        {"smp.activation_loading_horizon": 0},
        "error",
        "smp.activation_loading_horizon",
        "activation_loading_horizon(0) must be > 0",
        "set smp.activation_loading_horizon: 4 (the SMP default)",
    ),
    (
        "SMP015",
        {"cluster.instance_count": 1, **NO_TP, "smp.shard_optimizer_state": True, "smp.partitions": 8},
        "error",
        "smp.shard_optimizer_state",
        "shard_optimizer_state with dp(1) = world(8) / pp(8): SMP shards optimizer state over the data-parallel",
        "set smp.shard_optimizer_state: false (or cluster.instance_count: 2 for rdp 2)",
    ),
    (
        "SMP016",
        {"smp.ddp": False},
        "error",
        "smp.ddp",
        "tensor_parallel_degree(8) > 1 requires ddp, which is false",
        "set smp.ddp: true",
    ),
    (
        "SMP017",
        {"smp.ddp": False, **NO_TP, "smp.ddp_port": 29500},
        "error",
        "smp.ddp_port",
        "ddp_port(29500) requires ddp, which is false",
        "remove smp.ddp_port (or set smp.ddp: true)",
    ),
    (
        "SMP017",
        {"smp.ddp": False, **NO_TP, "smp.ddp_dist_backend": "nccl"},
        "error",
        "smp.ddp_dist_backend",
        "ddp_dist_backend(nccl) requires ddp",
        "remove smp.ddp_dist_backend (or set smp.ddp: true)",
    ),
    (
        "SMP018",
        {"smp.fp16": True, "smp.bf16": True},
        "error",
        "smp.bf16",
        "fp16 and bf16 are both true",
        "set smp.bf16: false (keep fp16)",
    ),
    (
        "SMP019",
        {"smp.bf16": True},
        "error",
        "smp.bf16",
        "bf16 with sharded_data_parallel_degree(1)",
        "set smp.bf16: false and smp.fp16: true",
    ),
    (
        "SMP020",
        {**NO_TP, **SDP, "smp.sharded_data_parallel_degree": 48},
        "error",
        "smp.sharded_data_parallel_degree",
        "sharded_data_parallel_degree(48) does not divide dp(128) = world(128) / pp(1)",
        "set smp.sharded_data_parallel_degree: 64",
    ),
    (
        "SMP021",
        {**NO_TP, **SDP, "smp.partitions": 2},
        "error",
        "smp.pipeline_parallel_degree",
        "sharded_data_parallel_degree(8) with pipeline_parallel_degree(2)",
        "set smp.pipeline_parallel_degree: 1 (or smp.sharded_data_parallel_degree: 1)",
    ),
    (
        "SMP022",
        {"smp.sharded_data_parallel_degree": 8},
        "error",
        "smp.shard_optimizer_state",
        "shard_optimizer_state with sharded_data_parallel_degree(8)",
        "set smp.shard_optimizer_state: false",
    ),
    (
        "SMP023",
        {**SDP, "sagemaker.framework_version": "2.0.0", "sagemaker.py_version": "py310"},
        "error",
        "sagemaker.framework_version",
        "sharded_data_parallel_degree(8) with tensor_parallel_degree(8) on framework_version 2.0.0",
        "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39 (or smp.tensor_parallel_degree: 1)",
    ),
    (
        "SMP024",
        {"smp.auto_partition": False, "smp.default_partition": 2, "smp.partitions": 2},
        "error",
        "smp.default_partition",
        "default_partition(2) is not a pipeline stage: auto_partition is false and pipeline_parallel_degree(2) gives "
        "stages 0..1",
        "set smp.default_partition: 1",
    ),
    (
        "SMP025",
        {"smp.memory_weight": 1.5},
        "error",
        "smp.memory_weight",
        "memory_weight(1.5) is outside [0, 1]",
        "set smp.memory_weight: 0.8 (the default for optimize memory)",
    ),
    (
        "MOD001",
        {"model.num_heads": 28},
        "error",
        "smp.tensor_parallel_degree",
        "num_heads(28) is not divisible by tensor_parallel_degree(8): 28 / 8 = 3.50 heads per rank",
        "set smp.tensor_parallel_degree: 4",
    ),
    (
        "MOD002",
        {"model.hidden_width": 7172, "model.num_heads": 4},
        "error",
        "model.hidden_width",
        "hidden_width(7172) is not divisible by tensor_parallel_degree(8)",
        "set model.hidden_width: 7176",
    ),
    (
        "MOD003",
        {"model.hidden_width": 7000},
        "error",
        "model.hidden_width",
        "hidden_width(7000) is not divisible by num_heads(64): 7000 / 64 = 109.38 dimensions per head",
        "set model.hidden_width: 6976",
    ),
    (
        "MOD004",
        {"model.num_layers": 2, "smp.partitions": 4},
        "error",
        "smp.pipeline_parallel_degree",
        "num_layers(2) < pipeline_parallel_degree(4)",
        "set smp.pipeline_parallel_degree: 2 (or model.num_layers: 4)",
    ),
    (
        "MOD005",
        {"model.num_layers": 47, "smp.partitions": 2},
        "warning",
        "model.num_layers",
        "num_layers(47) is not divisible by pipeline_parallel_degree(2): stages get 23 or 24 blocks",
        "set model.num_layers: 48 (a multiple of pp 2)",
    ),
    (
        "JOB001",
        {"sagemaker.framework_version": "1.13.2"},
        "error",
        "sagemaker.framework_version",
        "framework_version 1.13.2 has no SMP v1 DLC (supported: 2.0.0, 1.13.1,",
        "set sagemaker.framework_version: 1.13.1 (with sagemaker.py_version: py39)",
    ),
    (
        "JOB001",
        {"sagemaker.framework_version": "2.0.0"},
        "error",
        "sagemaker.py_version",
        "py_version py39 does not match framework_version 2.0.0: its SMP v1 DLC is py310",
        "set sagemaker.py_version: py310",
    ),
    (
        "JOB002",
        {"sagemaker.framework_version": "1.9.1", "sagemaker.py_version": "py38"},
        "error",
        "smp.tensor_parallel_degree",
        "smp.tensor_parallel_degree needs smdistributed-modelparallel 1.6+, but framework_version 1.9.1 ships SMP 1.4",
        "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
    ),
    (
        "JOB002",
        {"sagemaker.framework_version": "1.11.0", "sagemaker.py_version": "py38", "smp.bf16": True},
        "error",
        "smp.bf16",
        "smp.bf16 needs smdistributed-modelparallel 1.11+, but framework_version 1.11.0 ships SMP 1.10",
        "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
    ),
    (
        "JOB003",
        {"cluster.spot.enabled": True, "output.checkpoint_s3_uri": None},
        "warning",
        "output.checkpoint_s3_uri",
        "cluster.spot.enabled without output.checkpoint_s3_uri",
        "set output.checkpoint_s3_uri: s3://<bucket>/gpt2-30b/checkpoints",
    ),
    (
        "JOB004",
        {"cluster.spot.enabled": True, "cluster.spot.max_wait_hours": 10},
        "error",
        "cluster.spot.max_wait_hours",
        "spot.max_wait_hours(10) < max_run_hours(24)",
        "set cluster.spot.max_wait_hours: 48 (max_run_hours + 24, the default)",
    ),
    (
        "JOB005",
        {"data": {"test": "s3://bucket/test"}},
        "warning",
        "data.train",
        "no `train` channel in data (channels: test): the job trains on synthetic tokens",
        "set data.train: s3://<bucket>/<prefix>/train (or write `data: {}` to train on synthetic tokens)",
    ),
    (
        "JOB006",
        {"data.train": "gs://bucket/train"},
        "error",
        "data.train",
        "data.train 'gs://bucket/train' is neither an S3 URI",
        "set data.train: s3://<bucket>/<prefix>/train (or local:<path>)",
    ),
    (
        "JOB006",
        {"data.val": "s3:/bucket/val"},
        "error",
        "data.val",
        "data.val 's3:/bucket/val' is neither",
        "set data.val: s3://<bucket>/<prefix>/val (or local:<path>)",
    ),
    (
        "JOB007",
        {"sagemaker.extra_estimator_kwargs.distribution": {"mpi": {}}},
        "error",
        "sagemaker.extra_estimator_kwargs.distribution",
        "`distribution` is controlled by smlaunch (set it under `engine:` and `smp:`)",
        "remove sagemaker.extra_estimator_kwargs.distribution; set it under `engine:` and `smp:`",
    ),
    (
        "JOB007",
        {"sagemaker.extra_estimator_kwargs.max_run": 3600},
        "error",
        "sagemaker.extra_estimator_kwargs.max_run",
        "`max_run` is controlled by smlaunch (set it under `cluster.max_run_hours`)",
        "remove sagemaker.extra_estimator_kwargs.max_run; set it under `cluster.max_run_hours`",
    ),
    (
        "JOB008",
        {"sagemaker.environment.HF_TOKEN": "hf_abc123"},
        "warning",
        "sagemaker.environment.HF_TOKEN",
        "sagemaker.environment.HF_TOKEN looks like a secret (its name contains TOKEN)",
        "remove sagemaker.environment.HF_TOKEN; keep the value in AWS Secrets Manager or SSM Parameter Store and read "
        "it in the job (grant sagemaker.role access)",
    ),
    (
        "JOB008",
        {"sagemaker.environment.MY_ID": "AKIAABCDEFGHIJKLMNOP"},
        "warning",
        "sagemaker.environment.MY_ID",
        "(its value is shaped like an AWS access key id)",
        "remove sagemaker.environment.MY_ID; keep the value in AWS Secrets Manager or SSM Parameter Store and read "
        "it in the job (grant sagemaker.role access)",
    ),
    (
        "JOB010",
        {"sagemaker.subnets": ["subnet-0abc"]},
        "error",
        "sagemaker.security_group_ids",
        "sagemaker.subnets (1) without sagemaker.security_group_ids: a job in a VPC needs both",
        "set sagemaker.security_group_ids: [sg-...] (security groups of the subnets' VPC), or remove "
        "sagemaker.subnets to run without a VPC",
    ),
    (
        "JOB010",
        {"sagemaker.security_group_ids": ["sg-0abc"]},
        "error",
        "sagemaker.subnets",
        "sagemaker.security_group_ids (1) without sagemaker.subnets: a job in a VPC needs both",
        "set sagemaker.subnets: [subnet-...] (subnets of the security groups' VPC), or remove "
        "sagemaker.security_group_ids to run without a VPC",
    ),
]

# (rule, overrides): the boundary that must pass
PASSING = [
    ("CLU001", {"cluster.instance_type": "ml.p4de.24xlarge"}),
    ("CLU002", {"cluster.instance_type": "ml.g4dn.12xlarge", "smp.tensor_parallel_degree": 4}),
    ("CLU003", {"cluster.processes_per_host": 8}),
    ("CLU004", {"cluster.processes_per_host": 8}),
    ("CLU005", {"cluster.instance_type": "ml.p3.16xlarge", "cluster.instance_count": 1}),
    ("SMP001", {"smp.tensor_parallel_degree": 4}),
    ("SMP002", {"smp.tensor_parallel_degree": 8}),
    ("SMP003", {"cluster.instance_count": 3, "smp.tensor_parallel_degree": 4, "smp.partitions": 3}),
    ("SMP004", {"smp.partitions": 4}),
    ("SMP005", {"smp.placement_strategy": "spread", "cluster.instance_count": 1}),
    ("SMP005", {"smp.placement_strategy": "spread", **NO_TP}),
    ("SMP006", {"smp.placement_strategy": "spread"}),
    ("SMP007", {"smp.partitions": 2, "smp.prescaled_batch": True}),
    ("SMP008", {"smp.partitions": 2, "smp.microbatches": 4, "training.batch_size": 36}),
    ("SMP009", {"smp.partitions": 2, "smp.microbatches": 4, "smp.active_microbatches": 4}),
    ("SMP010", {"smp.partitions": 2, "smp.microbatches": 4}),
    ("SMP011", OFFLOAD),
    ("SMP012", OFFLOAD),
    ("SMP013", OFFLOAD),
    ("SMP014", {"smp.activation_loading_horizon": 1}),
    ("SMP015", {"cluster.instance_count": 2}),
    ("SMP016", {"smp.ddp": True}),
    ("SMP017", {"smp.ddp": True, "smp.ddp_port": 29500, "smp.ddp_dist_backend": "nccl"}),
    ("SMP018", {"smp.fp16": True}),
    ("SMP019", {"smp.bf16": True, **SDP}),
    ("SMP020", {**NO_TP, **SDP}),
    ("SMP021", {**NO_TP, **SDP}),
    ("SMP022", SDP),
    ("SMP023", SDP),
    ("SMP024", {"smp.auto_partition": False, "smp.default_partition": 1, "smp.partitions": 2}),
    ("SMP025", {"smp.memory_weight": 1.0}),
    ("MOD001", {"model.num_heads": 56}),
    ("MOD002", {"model.hidden_width": 7168}),
    ("MOD003", {"model.hidden_width": 7168 + 64 * 8}),
    ("MOD004", {"model.num_layers": 4, "smp.partitions": 4}),
    ("MOD005", {"model.num_layers": 48, "smp.partitions": 2}),
    ("JOB001", {"sagemaker.framework_version": "2.0.0", "sagemaker.py_version": "py310"}),
    ("JOB002", {"sagemaker.framework_version": "1.8.1", "sagemaker.py_version": "py36"}),
    ("JOB003", {"cluster.spot.enabled": True}),
    ("JOB004", {"cluster.spot.enabled": True, "cluster.spot.max_wait_hours": 24}),
    ("JOB005", {"data.train": "local:data/train"}),
    ("JOB006", {"data": {"train": "s3://b", "a": "local:x", "b": "file:///x", "c": "/abs/x", "d": "rel/x"}}),
    ("JOB007", {"sagemaker.extra_estimator_kwargs.keep_alive_period_in_seconds": 600}),
    ("JOB010", {"sagemaker.subnets": ["subnet-0abc"], "sagemaker.security_group_ids": ["sg-0abc"]}),
    (
        "JOB008",
        {
            "sagemaker.environment": {
                "TOKENIZERS_PARALLELISM": "false",
                "KMS_KEY_ID": "alias/x",
                "NCCL_DEBUG": "WARN",
                "MY_KEY": "arn:aws:kms:us-east-1:1:key/x",
            }
        },
    ),
]


@pytest.mark.parametrize("case", FAILING, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_rule_fails(case):
    rule_id, overrides, severity, field, message, fix = case
    findings = run(rule_id, overrides)
    assert findings, f"{rule_id} found nothing for {overrides}"
    match = [f for f in findings if f.field == field]
    assert match, [f.field for f in findings]
    found = match[0]
    assert (found.rule, found.severity) == (rule_id, severity)
    assert message in found.message
    assert found.fix == fix
    assert RULES[rule_id].severity == severity


@pytest.mark.parametrize(("rule_id", "overrides"), PASSING, ids=[f"{c[0]}-{i}" for i, c in enumerate(PASSING)])
def test_rule_passes(rule_id, overrides):
    assert run(rule_id, overrides) == []


def test_every_rule_has_a_failing_and_a_passing_case():
    from tests.unit import test_api_limits as api  # the SageMaker API limits (API001) keep their cases there
    from tests.unit import test_rules_engine as engine  # the engine rules judge an engine: torch base
    from tests.unit import test_rules_script as script  # the own-script rules judge an entry_point: base
    from tests.unit import test_rules_smp_docs as more  # the rules from the SMP-docs audit keep their cases there

    assert {c[0] for c in FAILING + more.FAILING + engine.FAILING + script.FAILING + api.FAILING} == set(OURS)
    assert {c[0] for c in PASSING + more.PASSING + engine.PASSING + script.PASSING + api.PASSING} == set(OURS)


def test_every_rule_is_reported_by_check_on_its_failing_case():
    """Through the registry (``check``, not the rule called directly) each rule id reports its failing cases."""
    from tests.unit.test_rules_smp_docs import FAILING as FAILING_DOCS  # the rules added from the SMP v1 docs

    cases = [*FAILING, *FAILING_DOCS]
    missed = [
        (rule_id, overrides)
        for rule_id, overrides, *_ in cases
        if rule_id not in {f.rule for f in check(spec_of(overrides), select=OURS).findings}
    ]
    assert missed == []
    assert {c[0] for c in cases} == {r for r in OURS if not r.startswith(("ENG", "ENT", "API"))}  # their own files


def test_base_has_no_findings():
    report = check(spec_of(), select=OURS)
    assert report.findings == ()
    assert report.valid


REFERENCE = [  # smp-v1.md §7: all shard_optimizer_state, prescaled, checkpointing each, ddp
    ("gpt2-10b", 16, 4, 1, 40, {}),
    ("gpt2-30b", 16, 8, 1, 32, {}),
    ("gpt2-60b", 32, 8, 2, 56, {"microbatches": 4, "active_microbatches": 2}),
]


@pytest.mark.parametrize("row", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_configurations_have_no_errors(row):
    preset, count, tp, pp, batch, extra = row
    spec = load_spec(
        {
            "name": preset,
            "model": {"preset": preset},
            "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": count},
            "smp": {
                "tensor_parallel_degree": tp,
                "partitions": pp,
                "ddp": True,
                "prescaled_batch": True,
                "shard_optimizer_state": True,
                **extra,
            },
            "training": {"batch_size": batch, "max_steps": 100, "activation_checkpointing": "each"},
        }
    )
    report = check(spec, select=OURS)
    assert report.errors == []
    assert [f.rule for f in report.warnings] == ["JOB005"]  # no train channel: synthetic tokens


def test_lines_are_filled_from_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: gpt2-30b\n"
        "model: {preset: gpt2-30b}\n"
        "cluster:\n  instance_type: ml.p4d.24xlarge\n  instance_count: 16\n"
        "smp:\n  tensor_parallel_degree: 16\n  ddp: true\n"
        "training:\n  batch_size: 32\n  max_steps: 10\n"
    )
    report = check(load_spec(path), select=OURS)
    lines = {f.rule: f.line for f in report.findings}
    assert lines["SMP002"] == 7
    assert lines["JOB005"] is None or lines["JOB005"] > 0
    assert report.source == str(path)
    assert all(f.line is None for f in check(spec_of({"smp.tensor_parallel_degree": 16}), select=OURS).findings)


def test_errors_come_first_in_declaration_order():
    spec = spec_of(
        {
            "data": {"test": "s3://bucket/test"},
            "smp.ddp": False,
            "smp.tensor_parallel_degree": 6,
            "model.num_heads": 48,
            "model.hidden_width": 6144,
        }
    )
    report = check(spec, select=OURS)
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, key=lambda s: s != "error")
    assert [f.rule for f in report.findings] == ["SMP003", "SMP016", "SMP001", "JOB005"]
    assert check(spec, select=OURS) == report


def test_select_and_ignore():
    spec = spec_of({"smp.ddp": False})
    assert [f.rule for f in check(spec, select=["SMP016"]).findings] == ["SMP016"]
    assert check(spec, ignore=["SMP016"]).findings == ()
    with pytest.raises(ValueError, match="unknown rule id"):
        check(spec, select=["NOPE1"])


def test_secret_values_are_never_echoed():
    spec = spec_of({"sagemaker.environment.DB_PASSWORD": "hunter2", "sagemaker.environment.X": "AKIAABCDEFGHIJKLMNOP"})
    text = repr(check(spec, select=["JOB008"]).to_dict())
    assert "hunter2" not in text and "AKIAABCDEFGHIJKLMNOP" not in text
    assert text.count("looks like a secret") == 2


def test_registry_is_well_formed():
    assert rule_ids()[:1] == ["CLU001"] and "MEM001" not in rule_ids()
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id and rule.severity in ("error", "warning")
        assert rule.name == rule.name.lower() and " " not in rule.name and rule.summary
    assert len({r.name for r in RULES.values()}) == len(RULES)
