"""What ``smlaunch plan`` returns: :class:`PlanResult` (ranked :class:`PlanCandidate` s, every feasible
:class:`Option`), and its table for the terminal and the notebook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smlaunch.costmodel import Estimate
from smlaunch.costmodel.memory import Knobs


@dataclass(frozen=True, slots=True)
class Option:
    """One feasible configuration found by the search (cheap: estimates are built for the top K only)."""

    estimate: Estimate
    batch_size: int

    @property
    def knobs(self) -> Knobs:
        return self.estimate.knobs

    @property
    def engine(self) -> str:
        """``smp`` or ``torch``: the engine whose runtime the estimate models."""
        return "torch" if self.knobs.runtime == "native" else "smp"

    @property
    def tokens_per_s(self) -> float:
        return self.estimate.throughput.tokens_per_s

    @property
    def memory_gib(self) -> float:
        return self.estimate.memory.total_gib

    def spec_values(self) -> dict[str, Any]:
        """The knobs as (section, key) values, for matching and for building a spec."""
        k = self.knobs
        return {
            "tp": k.tp,
            "pp": k.pp,
            "microbatches": k.microbatches,
            "active_microbatches": k.active_microbatches,
            "shard_optimizer_state": k.shard_optimizer_state,
            "prescaled_batch": k.prescaled_batch,
            "activation_checkpointing": k.checkpointing,
            "offload_activations": k.offload_activations,
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class PlanCandidate:
    """A top-K configuration: its spec (plain dict) and its full estimate."""

    spec: dict[str, Any]
    estimate: Estimate
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanResult:
    """The ranked top K, every feasible option, how many were considered, and why the first one."""

    candidates: list[PlanCandidate]
    feasible: list[Option] = field(repr=False)
    considered: int
    explanation: str

    COLUMNS = (
        "#", "engine", "tp", "pp", "mb", "act", "batch", "pre", "shard", "ckpt", "off", "GiB", "tok/s", "time",
        "cost $",
    )  # fmt: skip
    """Headers of :meth:`rows`, shared by ``smlaunch plan`` and the notebook view: the engine, microbatches, active
    microbatches, batch_size, prescaled_batch, shard_optimizer_state, activation checkpointing, offloading, GiB per
    GPU, tokens/s, whole-job time, on-demand cost."""

    @property
    def best(self) -> PlanCandidate:
        return self.candidates[0]

    def rows(self) -> list[list[str]]:
        """The ranked table as text cells, one row per candidate (columns: :attr:`COLUMNS`)."""
        from smlaunch.progress import format_duration

        yes = {True: "yes", False: "-"}
        table = []
        for rank, c in enumerate(self.candidates, 1):
            k, e = c.estimate.knobs, c.estimate
            table.append([
                str(rank), c.spec.get("engine", "smp"), str(k.tp), str(k.pp), str(k.microbatches),
                str(k.active_microbatches) if k.pp > 1 else "-", str(c.spec["training"]["batch_size"]),
                yes[bool(k.prescaled_batch)], yes[bool(k.shard_optimizer_state)], k.checkpointing,
                yes[bool(k.offload_activations)], f"{e.memory.total_gib:.1f}",
                f"{e.throughput.tokens_per_s:,.0f}", format_duration(e.time_s),
                "?" if e.cost_usd is None else f"{e.cost_usd:,.0f}",
            ])  # fmt: skip
        return table

    def table_text(self) -> str:
        """The ranked table as aligned plain text (fits an 80-column terminal for any cluster)."""
        cells = [list(self.COLUMNS), *self.rows()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.COLUMNS))]
        left = {self.COLUMNS.index("engine"), self.COLUMNS.index("ckpt")}
        return "\n".join(
            " ".join(
                c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            for row in cells
        )

    def to_dict(self) -> dict:
        rows = []
        for rank, c in enumerate(self.candidates, 1):
            engine = c.spec.get("engine", "smp")
            rows.append({"rank": rank, "engine": engine, "spec": c.spec, **c.estimate.to_dict()})
        return {
            "considered": self.considered,
            "feasible": len(self.feasible),
            "explanation": self.explanation,
            "candidates": rows,
        }
