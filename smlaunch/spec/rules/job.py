"""Job rules (``JOB``): framework images, spot, data channels, estimator kwargs, secrets."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator

from smlaunch.catalog import SUPPORTED_FRAMEWORKS
from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import SMP_ONLY, Hit, hit, rule
from smlaunch.targets.sagemaker_v2 import OWNED_KEYS

FEATURES: tuple[tuple[str, tuple[int, int], Callable[[JobSpec], bool]], ...] = (
    ("smp.tensor_parallel_degree", (1, 6), lambda s: s.smp.tensor_parallel_degree > 1),
    ("smp.offload_activations", (1, 6), lambda s: s.smp.offload_activations),
    ("smp.shard_optimizer_state", (1, 6), lambda s: s.smp.shard_optimizer_state),
    ("smp.prescaled_batch", (1, 6), lambda s: s.smp.prescaled_batch),
    ("smp.fp16_params", (1, 6), lambda s: s.smp.fp16_params),
    ("smp.fp16", (1, 10), lambda s: s.smp.fp16),
    ("smp.bf16", (1, 11), lambda s: s.smp.bf16),
    ("smp.sharded_data_parallel_degree", (1, 11), lambda s: s.smp.sharded_data_parallel_degree > 1),
    ("smp.ddp_dist_backend", (1, 13), lambda s: s.smp.ddp_dist_backend is not None),
)
"""SMP features in use -> the smdistributed-modelparallel version that introduced them (smp-v1.md §3; GEN marks
``fp16_params`` "smdistributed-modelparallel>=v1.6")."""

SMP_OF_FRAMEWORK: dict[str, tuple[int, int]] = {
    # framework_version -> newest smdistributed-modelparallel of its DLC (smp-v1.md §5).
    "2.0.0": (1, 15),
    "1.13.1": (1, 15),
    "1.12.1": (1, 13),
    "1.12.0": (1, 11),
    "1.11.0": (1, 10),
    "1.10.2": (1, 7),
    "1.10.0": (1, 5),
    "1.9.1": (1, 4),
    "1.8.1": (1, 6),
}


def _framework_named(fw: str) -> str:
    """``1.12 (the SDK's alias for 1.12.1)``, or the version as written."""
    full = fx.full_framework_version(fw)
    return f"{fw} (the SDK's alias for {full})" if full != fw else fw


@rule("JOB001", "framework-supported", "error", engines=SMP_ONLY)
def _framework(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """(framework_version, py_version) must be one of the SMP v1 PyTorch DLCs; SDK aliases (1.12) count as their
    full version (sagemaker-python-sdk image_uri_config/pytorch.json, training "version_aliases")."""
    fw, py = spec.sagemaker.framework_version, spec.sagemaker.py_version
    full = fx.full_framework_version(fw)
    want = SUPPORTED_FRAMEWORKS.get(full)
    if want is None:
        close = difflib.get_close_matches(full, SUPPORTED_FRAMEWORKS, n=1, cutoff=0.6)
        best = close[0] if close else "1.13.1"
        yield hit(
            "sagemaker.framework_version",
            f"framework_version {_framework_named(fw)} has no SMP v1 DLC "
            f"(supported: {', '.join(SUPPORTED_FRAMEWORKS)})",
            f"set sagemaker.framework_version: {best} (with sagemaker.py_version: {SUPPORTED_FRAMEWORKS[best]})",
        )
    elif py != want:
        yield hit(
            "sagemaker.py_version",
            f"py_version {py} does not match framework_version {_framework_named(fw)}: its SMP v1 DLC is {want}",
            f"set sagemaker.py_version: {want}",
        )


@rule("JOB002", "smp-feature-version", "error", engines=SMP_ONLY)
def _feature_version(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Features need a minimum smdistributed-modelparallel version, fixed by framework_version (aliases resolved)."""
    fw = spec.sagemaker.framework_version
    have = SMP_OF_FRAMEWORK.get(fx.full_framework_version(fw))
    if have is None:
        return  # JOB001 reports an unknown framework
    for field, need, used in FEATURES:
        if used(spec) and have < need:
            yield hit(
                field,
                f"{field} needs smdistributed-modelparallel {need[0]}.{need[1]}+, but framework_version "
                f"{_framework_named(fw)} "
                f"ships SMP {have[0]}.{have[1]}",
                "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
            )


@rule("JOB003", "spot-needs-checkpoints", "warning")
def _spot_checkpoint(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Managed spot without checkpoint_s3_uri loses all progress on an interruption."""
    if spec.cluster.spot.enabled and not spec.output.checkpoint_s3_uri:
        yield hit(
            "output.checkpoint_s3_uri",
            "cluster.spot.enabled without output.checkpoint_s3_uri: a spot interruption restarts the job from step 0",
            f"set output.checkpoint_s3_uri: s3://<bucket>/{spec.name}/checkpoints",
        )


@rule("JOB004", "spot-max-wait", "error")
def _spot_wait(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Spot max_wait_hours must be >= max_run_hours (SageMaker's rule)."""
    wait, run = spec.cluster.spot.max_wait_hours, spec.cluster.max_run_hours
    if spec.cluster.spot.enabled and wait is not None and wait < run:
        yield hit(
            "cluster.spot.max_wait_hours",
            f"spot.max_wait_hours({wait:g}) < max_run_hours({run:g}): SageMaker requires max_wait >= max_run",
            f"set cluster.spot.max_wait_hours: {run + 24:g} (max_run_hours + 24, the default)",
        )


@rule("JOB005", "train-channel", "warning")
def _train_channel(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Without a `train` channel the entry point trains on synthetic tokens: fine when chosen (`data: {}`)."""
    chosen = "data" in spec.model_fields_set and not spec.data
    if "train" not in spec.data and not chosen:
        have = f"channels: {', '.join(sorted(spec.data))}" if spec.data else "no data section"
        yield hit(
            "data.train",
            f"no `train` channel in data ({have}): the job trains on synthetic tokens",
            "set data.train: s3://<bucket>/<prefix>/train (or write `data: {}` to train on synthetic tokens)",
        )


@rule("JOB006", "channel-uri", "error")
def _channel_uri(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Data channels are s3://bucket/prefix, local:path or a file path."""
    for channel, uri in spec.data.items():
        if fx.channel_uri_ok(uri):
            continue
        yield hit(
            ("data", channel),
            f"data.{channel} {uri!r} is neither an S3 URI (s3://bucket/prefix) nor a local path",
            f"set data.{channel}: s3://<bucket>/<prefix>/{channel} (or local:<path>)",
        )


@rule("JOB007", "estimator-kwargs-not-owned", "error")
def _owned_kwargs(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """extra_estimator_kwargs must not set keys that smlaunch renders itself."""
    for key in spec.sagemaker.extra_estimator_kwargs:
        if key in OWNED_KEYS:
            where = OWNED_KEYS[key]
            section = f"set it under {where}" if where.startswith("`") else f"it comes from {where}"
            yield hit(
                ("sagemaker", "extra_estimator_kwargs", key),
                f"`{key}` is controlled by smlaunch ({section})",
                f"remove sagemaker.extra_estimator_kwargs.{key}; {section}",
            )


@rule("JOB008", "no-secrets-in-environment", "warning")
def _env_secrets(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Environment variables are visible in DescribeTrainingJob: no secrets there. Found by name and by value
    shape (token prefixes, URL passwords, random-looking strings: :mod:`smlaunch.secret_values`)."""
    from smlaunch.secret_values import secret_reason

    for name, value in spec.sagemaker.environment.items():
        reason = secret_reason(name, value)
        if reason:
            yield hit(
                ("sagemaker", "environment", name),
                f"sagemaker.environment.{name} looks like a secret ({reason}); job environment variables "
                "are stored in plain text and shown by DescribeTrainingJob and the console",
                f"remove sagemaker.environment.{name}; keep the value in AWS Secrets Manager or SSM Parameter "
                "Store and read it in the job (grant sagemaker.role access)",
            )


@rule("JOB009", "checkpoints-need-s3", "warning")
def _checkpoints_s3(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Periodic checkpoints without output.checkpoint_s3_uri stay on the instances and are lost when the job ends.

    Sources: SageMaker syncs /opt/ml/checkpoints to S3 only when the estimator has ``checkpoint_s3_uri``
    (sagemaker-contract.md §5, §10); AWS's GPT-2 notebook always sets it (smp-train-gpt-simple.ipynb). A spec
    with a local channel (``local:``, a path) runs only under ``smlaunch local`` (submit refuses it:
    smlaunch/backends/sagemaker.py), whose <run_dir>/checkpoints outlives the run, so it passes.
    """
    every, steps = spec.training.checkpoint_every_steps, spec.training.max_steps
    if every == 0 or spec.output.checkpoint_s3_uri or any(not uri.startswith("s3://") for uri in spec.data.values()):
        return
    yield hit(
        "output.checkpoint_s3_uri",
        f"checkpoint_every_steps({every}) with max_steps({steps}): {steps // every} checkpoint(s) written to "
        "/opt/ml/checkpoints, which SageMaker copies to S3 only with output.checkpoint_s3_uri: they are lost "
        "when the job ends, and a restarted job starts from step 0",
        f"set output.checkpoint_s3_uri: s3://<bucket>/{spec.name}/checkpoints",
    )


@rule("JOB010", "vpc-subnets-and-security-groups", "error")
def _vpc_pair(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """A VPC needs both subnets and security groups: the SDK raises ``RuntimeError("When setting up custom VPC,
    both subnets and security_group_ids must be set")`` otherwise (sagemaker/estimator.py, SDK v2), and
    CreateTrainingJob's VpcConfig requires both lists (botocore's SageMaker model: ``Subnets`` and
    ``SecurityGroupIds`` are required members of ``VpcConfig``)."""
    subnets, groups = spec.sagemaker.subnets, spec.sagemaker.security_group_ids
    if subnets and not groups:
        yield hit(
            "sagemaker.security_group_ids",
            f"sagemaker.subnets ({len(subnets)}) without sagemaker.security_group_ids: a job in a VPC needs both",
            "set sagemaker.security_group_ids: [sg-...] (security groups of the subnets' VPC), or remove "
            "sagemaker.subnets to run without a VPC",
        )
    elif groups and not subnets:
        yield hit(
            "sagemaker.subnets",
            f"sagemaker.security_group_ids ({len(groups)}) without sagemaker.subnets: a job in a VPC needs both",
            "set sagemaker.subnets: [subnet-...] (subnets of the security groups' VPC), or remove "
            "sagemaker.security_group_ids to run without a VPC",
        )
