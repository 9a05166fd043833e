"""Layout helpers shared by the parallel-layout rules."""

from __future__ import annotations

from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec


def per_node(spec: JobSpec, lay: Layout) -> tuple[int, str] | None:
    """Ranks per node and how to name them, or None when the instance is unknown (CLU001 reports it)."""
    if lay.instance is None:
        return None
    gpus = lay.instance.num_gpus
    if lay.gpus_per_node < gpus:
        return lay.gpus_per_node, f"processes_per_host({lay.gpus_per_node})"
    return gpus, f"GPUs per instance({gpus})"


def tp_nodes(spec: JobSpec, lay: Layout, strategy: str) -> int:
    """How many nodes the first tensor-parallel group spans under ``strategy`` (cluster keeps it on one)."""
    if strategy not in ("spread", "TPD") or lay.tp == 1:
        return 1
    stride = max(lay.world // lay.tp, 1)  # TPD: data-parallel ranks are neighbours, tp ranks world/tp apart
    return len({(t * stride) // max(lay.gpus_per_node, 1) for t in range(lay.tp)})


def divides(lay: Layout) -> bool:
    """world is a multiple of tp x pp, so dp and rdp are exact (SMP003 reports the layouts where they are not).

    Rules that print ``dp(..) = world(..) / pp(..)`` or ``rdp(..) = ...`` stay silent otherwise: the layout's
    floored degrees would make the printed arithmetic false.
    """
    return lay.world % (lay.tp * lay.pp) == 0


def dp_formula(lay: Layout) -> str:
    """``dp(128) = world(128) / pp(1)``: SMP's dp_size() counts tensor-parallel ranks (smp-v1.md §6)."""
    return f"dp({lay.dp}) = world({lay.world}) / pp({lay.pp})"


def rdp_formula(lay: Layout) -> str:
    """``rdp(16) = world(128) / (pp(1) x tp(8))``: model replicas, SMP's rdp_size() (smp-v1.md §6)."""
    return f"rdp({lay.rdp}) = world({lay.world}) / (pp({lay.pp}) x tp({lay.tp}))"


def count_for_rdp(lay: Layout, rdp: int) -> int:
    """Instances for ``rdp`` model replicas of this tp x pp (at least one more than now)."""
    from smlaunch.spec.rules.arith import smallest_count_for

    return smallest_count_for(rdp * lay.tp * lay.pp, lay.gpus_per_node, lay.num_nodes + 1)
