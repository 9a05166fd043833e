"""The native path's per-step losses and log lines without a host sync per step.

Each step leaves its loss on the device; every `every` steps (and on the first `WARM_STEPS` steps of a run, at a
checkpoint step and at the last step) one all-reduce carries the window's losses and the SIGTERM flags, one `.tolist()`
waits for the GPU, and the window's contract lines are printed, one per step (docs/entrypoint-contract.md). A step's
time is its window's wall time over the window's steps, so it counts the GPU work, not only the launches.
"""

from __future__ import annotations

import time

import runtime
import torch

WARM_STEPS = 3
"""The first steps of a run close a window each: compile and warm-up stay out of the steady-state windows."""


class StepLog:
    def __init__(self, *, every: int, start_step: int, device, divisor: int, rank: int, stats: dict) -> None:
        self.every, self.start_step, self.device = max(1, every), start_step, device
        self.divisor, self.rank = divisor, rank  # ranks holding the loss (last stage: dp * tp)
        self.stats = stats  # tokens_per_step, flops_per_token, world, peak
        self.losses: list[float] = []
        self.times: list[float] = []
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._t0 = time.perf_counter()

    def add(self, step: int, loss: torch.Tensor | None) -> None:
        """Record step `step` (1-based, after it ran); `loss` is this rank's share (None: not a last-stage rank)."""
        loss = loss.detach().float().reshape(()) if loss is not None else torch.zeros((), device=self.device)
        self._pending.append((step, loss))

    def due(self, step: int, *, force: bool = False) -> bool:
        warm = step - self.start_step <= WARM_STEPS
        return bool(self._pending) and (force or warm or len(self._pending) >= self.every)

    def flush(self, stop_signal: bool) -> bool:
        """Close the window: reduce its losses and the SIGTERM flags over all ranks, log; True if any rank stops."""
        import torch.distributed as dist

        flags = torch.tensor([float(stop_signal)], device=self.device)
        stats = torch.cat([torch.stack([loss for _, loss in self._pending]), flags])
        dist.all_reduce(stats)  # loss from the last stage (mean over dp, equal over tp); SIGTERM on any rank
        values = stats.tolist()  # the one host sync of the window
        now = time.perf_counter()
        dt = (now - self._t0) / len(self._pending)
        self._t0 = now
        for (step, _), total in zip(self._pending, values[:-1], strict=True):
            self.losses.append(total / self.divisor)
            self.times.append(dt)
            if self.rank == 0:
                self._log(step, self.losses[-1], dt)
        self._pending = []
        return values[-1] > 0

    def _log(self, step: int, loss: float, dt: float) -> None:
        s = self.stats
        tps = s["tokens_per_step"] / dt
        runtime.log_step(
            step=step,
            loss=loss,
            step_time_s=dt,
            tokens_per_s=tps,
            mfu=runtime.mfu(tps, s["flops_per_token"], s["world"], s["peak"]),
            mem_gib=runtime.peak_mem_gib(self.device),
        )
