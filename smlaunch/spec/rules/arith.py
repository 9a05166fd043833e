"""The arithmetic behind the rulebook's fixes: nearest valid values, divisors, an alternative instance,
and the channel URI check that several rules share (secret-looking values: smlaunch.secret_values). Pure and
cheap to import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from smlaunch.catalog import INSTANCES, Instance
from smlaunch.engines import FRAMEWORK_ALIASES, full_framework_version  # noqa: F401 (the rules' names for them)


def nearest(candidates: Iterable[int], target: float) -> int:
    """The candidate closest to ``target``; ties go to the larger one (more parallelism, less memory)."""
    return min(candidates, key=lambda c: (abs(c - target), -c))


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` in ascending order, from its prime factors: trial division only up to the square
    root of what is left once the small factors are out (a world of 2^31 nodes x 8 GPUs takes 31 steps, a prime
    near 2^41 about 740,000: bounded by the spec's int32 limits, never O(n))."""
    factors: dict[int, int] = {}
    rest, p = n, 2
    while p * p <= rest:
        while rest % p == 0:
            factors[p] = factors.get(p, 0) + 1
            rest //= p
        p += 1 if p == 2 else 2
    if rest > 1:
        factors[rest] = factors.get(rest, 0) + 1
    found = [1]
    for prime, power in factors.items():
        found = [d * prime**e for d in found for e in range(power + 1)]
    return sorted(found)


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


def channel_uri_ok(uri: str) -> bool:
    """s3://bucket[/prefix], local:<path>, file:<path>, or a plain file path."""
    if uri.startswith("s3://"):
        return bool(uri[5:].split("/", 1)[0])
    scheme, sep, rest = uri.partition(":")
    if sep and len(scheme) > 1 and "/" not in scheme:  # a URI scheme (not C:\ or /a:b)
        return scheme in ("local", "file") and bool(rest.strip())
    return bool(uri.strip())
