"""Machinery of the rulebook (:mod:`smlaunch.spec.rules`): the registry, and the arithmetic behind each fix.

The registry (:func:`rule`, :data:`RULES`, :class:`Rule`, :func:`hit`) and helpers that compute the nearest
valid value, an alternative instance, owned estimator keys and secret-looking variables. Everything here is
pure and cheap to import; ``smlaunch validate`` must cold-start fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from smlaunch.catalog import INSTANCES, Instance
from smlaunch.layout import Layout
from smlaunch.spec.findings import Finding, Severity
from smlaunch.spec.load import dotted
from smlaunch.spec.models import JobSpec


class Hit(NamedTuple):
    """What a rule yields; :class:`Rule` turns it into a :class:`Finding`."""

    path: tuple[str, ...]
    message: str
    fix: str


def hit(field: str | tuple[str, ...], message: str, fix: str) -> Hit:
    """A broken rule at ``field`` (dotted string, or a tuple when a key may contain dots)."""
    return Hit(tuple(field.split(".")) if isinstance(field, str) else field, message, fix)


RuleFunc = Callable[[JobSpec, Layout], Iterable["Hit | Finding"]]


@dataclass(frozen=True)
class Rule:
    """A registered rule. Calling it returns complete findings (rule id, severity and line filled)."""

    id: str
    name: str
    severity: Severity
    func: RuleFunc

    @property
    def summary(self) -> str:
        """First line of the rule's docstring."""
        return (self.func.__doc__ or "").strip().splitlines()[0]

    def __call__(self, spec: JobSpec, lay: Layout) -> list[Finding]:
        found = []
        for item in self.func(spec, lay):
            if isinstance(item, Finding):  # e.g. from smlaunch.estimator: keeps its own id and severity
                line = item.line if item.line is not None else _line(spec, tuple(item.field.split(".")))
                found.append(replace(item, line=line))
            else:
                found.append(
                    Finding(self.id, self.severity, dotted(item.path), item.message, item.fix, _line(spec, item.path))
                )
        return found


RULES: dict[str, Rule] = {}
"""Every rule, by id, in declaration order (the order of a report within one severity)."""


def rule(rule_id: str, name: str, severity: Severity) -> Callable[[RuleFunc], Rule]:
    """Register a rule function under ``rule_id`` (e.g. ``SMP001``) and ``name`` (e.g. ``tp-power-of-two``)."""

    def register(func: RuleFunc) -> Rule:
        if rule_id in RULES or any(r.name == name for r in RULES.values()):
            raise ValueError(f"rule {rule_id} / {name} is registered twice")
        RULES[rule_id] = Rule(rule_id, name, severity, func)
        return RULES[rule_id]

    return register


def rule_ids() -> list[str]:
    """Ids of all registered rules, in declaration order."""
    return list(RULES)


def _line(spec: JobSpec, path: tuple[str, ...]) -> int | None:
    return spec.source.line_of(path) if spec.source is not None else None


FEATURES: tuple[tuple[str, tuple[int, int], Callable[[JobSpec], bool]], ...] = (
    ("smp.tensor_parallel_degree", (1, 6), lambda s: s.smp.tensor_parallel_degree > 1),
    ("smp.offload_activations", (1, 6), lambda s: s.smp.offload_activations),
    ("smp.shard_optimizer_state", (1, 6), lambda s: s.smp.shard_optimizer_state),
    ("smp.prescaled_batch", (1, 6), lambda s: s.smp.prescaled_batch),
    ("smp.fp16", (1, 10), lambda s: s.smp.fp16),
    ("smp.bf16", (1, 11), lambda s: s.smp.bf16),
    ("smp.sharded_data_parallel_degree", (1, 11), lambda s: s.smp.sharded_data_parallel_degree > 1),
    ("smp.ddp_dist_backend", (1, 13), lambda s: s.smp.ddp_dist_backend is not None),
)
"""SMP features in use -> the smdistributed-modelparallel version that introduced them (smp-v1.md §3)."""

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

OWNED_ESTIMATOR_KWARGS: dict[str, str] = {
    # PyTorch estimator argument -> where the job.yaml sets it instead.
    "distribution": "`smp:`",
    "hyperparameters": "`training:` and `model:`",
    "instance_type": "`cluster.instance_type`",
    "instance_count": "`cluster.instance_count`",
    "instance_groups": "`cluster:`",
    "entry_point": "smlaunch's built-in GPT-2 entry point",
    "source_dir": "smlaunch's built-in GPT-2 entry point",
    "dependencies": "smlaunch's built-in GPT-2 entry point",
    "role": "`sagemaker.role`",
    "image_uri": "`sagemaker.image_uri`",
    "framework_version": "`sagemaker.framework_version`",
    "py_version": "`sagemaker.py_version`",
    "environment": "`sagemaker.environment`",
    "tags": "`sagemaker.tags`",
    "subnets": "`sagemaker.subnets`",
    "security_group_ids": "`sagemaker.security_group_ids`",
    "volume_kms_key": "`sagemaker.volume_kms_key`",
    "output_kms_key": "`sagemaker.output_kms_key`",
    "enable_network_isolation": "`sagemaker.enable_network_isolation`",
    "encrypt_inter_container_traffic": "`sagemaker.encrypt_inter_container_traffic`",
    "sagemaker_session": "`sagemaker.region`",
    "checkpoint_s3_uri": "`output.checkpoint_s3_uri`",
    "checkpoint_local_path": "smlaunch (/opt/ml/checkpoints, the entry point's contract)",
    "output_path": "`output.s3_path`",
    "use_spot_instances": "`cluster.spot.enabled`",
    "max_wait": "`cluster.spot.max_wait_hours`",
    "max_run": "`cluster.max_run_hours`",
    "volume_size": "`cluster.volume_size_gb`",
    "base_job_name": "`name`",
    "debugger_hook_config": "smlaunch (off for SMP v1, as AWS's notebooks do)",
    "disable_profiler": "smlaunch (off for SMP v1, as AWS's notebooks do)",
}

_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "CREDENTIALS")
_SECRET_COMPOUNDS = {
    "APIKEY": "KEY",
    "ACCESSKEY": "KEY",
    "SECRETKEY": "SECRET",
    "AUTHTOKEN": "TOKEN",
    "PASSPHRASE": "PASSWORD",
}
_AWS_ACCESS_KEY = re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")
_KMS_VALUE = re.compile(
    r"^(arn:aws[a-z-]*:kms:\S+|alias/\S+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


def nearest(candidates: Iterable[int], target: float) -> int:
    """The candidate closest to ``target``; ties go to the larger one (more parallelism, less memory)."""
    return min(candidates, key=lambda c: (abs(c - target), -c))


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` in ascending order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def nearest_multiple(value: int, of: int) -> int:
    """The multiple of ``of`` (at least ``of``) closest to ``value``; ties round up."""
    below = max(value // of * of, of)
    above = below + of if below < value else below
    return nearest({below, above}, value)


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def powers_of_two_upto(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit`` (at least [1])."""
    powers, p = [], 1
    while p <= max(limit, 1):
        powers.append(p)
        p *= 2
    return powers


def smallest_count_for(multiple_of: int, gpus_per_node: int, at_least: int) -> int:
    """Smallest instance count >= ``at_least`` whose world (count x gpus) is divisible by ``multiple_of``."""
    count = at_least
    while (count * gpus_per_node) % multiple_of:
        count += 1
    return count


def alternative_instance(current: Instance | None, *, need_efa: bool = False) -> Instance:
    """An SMP v1 instance like ``current``: same GPU count if possible, the least GPU memory not below it."""
    pool = [i for i in INSTANCES.values() if i.smp_v1 and (i.efa or not need_efa)]
    if current is not None:
        same = [i for i in pool if i.num_gpus == current.num_gpus]
        pool = same or pool
        bigger = [i for i in pool if i.gpu.memory_gib >= current.gpu.memory_gib]
        if bigger:
            return min(bigger, key=lambda i: (i.gpu.memory_gib, i.price_per_hour))
    return max(pool, key=lambda i: (i.gpu.memory_gib, -i.price_per_hour))


def secret_reason(name: str, value: str) -> str | None:
    """Why an environment variable looks like a secret (never quoting the value), or None."""
    if _AWS_ACCESS_KEY.search(value):
        return "its value is shaped like an AWS access key id"
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if "KMS" in words or _KMS_VALUE.match(value.strip()):
        return None  # KMS key ids and ARNs are identifiers, not secrets
    for word in words:
        if word in _SECRET_WORDS:
            return f"its name contains {word}"
        if word in _SECRET_COMPOUNDS:
            return f"its name contains {_SECRET_COMPOUNDS[word]}"
    return None


def channel_uri_ok(uri: str) -> bool:
    """s3://bucket[/prefix], local:<path>, file:<path>, or a plain file path."""
    if uri.startswith("s3://"):
        return bool(uri[5:].split("/", 1)[0])
    scheme, sep, rest = uri.partition(":")
    if sep and len(scheme) > 1 and "/" not in scheme:  # a URI scheme (not C:\ or /a:b)
        return scheme in ("local", "file") and bool(rest.strip())
    return bool(uri.strip())
