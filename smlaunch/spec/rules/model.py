"""Model-shape rules (``MOD``): heads, width and layers against the parallel degrees."""

from __future__ import annotations

import math
from collections.abc import Iterator

from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import Hit, hit, rule


@rule("MOD001", "heads-divisible-by-tp", "error")
def _heads_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tensor parallelism splits attention heads: num_heads % tp == 0."""
    heads = spec.model.num_heads
    if heads % lay.tp:
        best = fx.nearest([d for d in fx.divisors(heads) if fx.is_power_of_two(d)], lay.tp)
        yield hit(
            "smp.tensor_parallel_degree",
            f"num_heads({heads}) is not divisible by tensor_parallel_degree({lay.tp}): {heads} / {lay.tp} = "
            f"{heads / lay.tp:.2f} heads per rank",
            f"set smp.tensor_parallel_degree: {best}",
        )


@rule("MOD002", "hidden-divisible-by-tp", "error")
def _hidden_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tensor parallelism splits the hidden width: hidden_width % tp == 0."""
    hidden = spec.model.hidden_width
    if hidden % lay.tp:
        yield hit(
            "model.hidden_width",
            f"hidden_width({hidden}) is not divisible by tensor_parallel_degree({lay.tp})",
            f"set model.hidden_width: {fx.nearest_multiple(hidden, math.lcm(lay.tp, spec.model.num_heads))}",
        )


@rule("MOD003", "hidden-divisible-by-heads", "error")
def _hidden_heads(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Every head gets hidden_width / num_heads dimensions: hidden_width % num_heads == 0."""
    hidden, heads = spec.model.hidden_width, spec.model.num_heads
    if hidden % heads:
        yield hit(
            "model.hidden_width",
            f"hidden_width({hidden}) is not divisible by num_heads({heads}): {hidden} / {heads} = "
            f"{hidden / heads:.2f} dimensions per head",
            f"set model.hidden_width: {fx.nearest_multiple(hidden, math.lcm(lay.tp, heads))}",
        )


@rule("MOD004", "layers-cover-stages", "error")
def _layers_cover(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Every pipeline stage needs at least one transformer block: num_layers >= pp."""
    layers = spec.model.num_layers
    if layers < lay.pp:
        yield hit(
            "smp.pipeline_parallel_degree",
            f"num_layers({layers}) < pipeline_parallel_degree({lay.pp}): some stages would hold no block",
            f"set smp.pipeline_parallel_degree: {layers} (or model.num_layers: {lay.pp})",
        )


@rule("MOD005", "layers-balanced", "warning")
def _layers_balanced(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """num_layers divisible by pp keeps pipeline stages balanced."""
    layers = spec.model.num_layers
    if lay.pp <= layers and layers % lay.pp:
        best = fx.nearest_multiple(layers, lay.pp)
        yield hit(
            "model.num_layers",
            f"num_layers({layers}) is not divisible by pipeline_parallel_degree({lay.pp}): stages get "
            f"{layers // lay.pp} or {layers // lay.pp + 1} blocks, the slowest sets the pace",
            f"set model.num_layers: {best} (a multiple of pp {lay.pp})",
        )
