"""The arithmetic behind the rulebook's fixes: nearest valid values, divisors, an alternative instance,
and the shape checks (secret-looking variables, channel URIs) that several rules share. Pure and cheap to import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from smlaunch.catalog import INSTANCES, Instance
from smlaunch.engines import FRAMEWORK_ALIASES, full_framework_version  # noqa: F401 (the rules' names for them)

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
    """Positive divisors of ``n`` in ascending order (O(sqrt n): a 10-digit typo is answered at once)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


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
    step = multiple_of // math.gcd(multiple_of, gpus_per_node)  # counts that work are the multiples of step
    return -(-at_least // step) * step


def alternative_instance(current: Instance | None, *, need_efa: bool = False, engine: str = "smp") -> Instance:
    """An instance of ``engine`` like ``current``: same GPU count if possible, the least GPU memory not below it."""
    from smlaunch.engines import torch_runs_on

    runs = (lambda i: i.smp_v1) if engine == "smp" else (lambda i: torch_runs_on(i.name))
    pool = [i for i in INSTANCES.values() if runs(i) and (i.efa or not need_efa)]
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
