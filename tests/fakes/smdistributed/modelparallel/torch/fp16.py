"""FP16 pieces of the fake: the dynamic loss scaler and the master-weight optimizer SMP v1 uses when `fp16: True`.

Modeled on Megatron/apex `FP16_Optimizer` and `DynamicLossScaler`, which SMP v1's fp16 mode follows (the AWS GPT-2
example vendors the same files): fp32 master copies of the fp16 parameters, a loss scale starting at 2**32 that is
halved on overflow (after `delayed_shift` overflows) and doubled after `scale_window` clean steps, steps skipped
on overflow, `clip_master_grads(max_norm)`, and an `overflow` flag.
"""

from __future__ import annotations

import torch


class DynamicLossScaler:
    """Loss scale with hysteresis (`delayed_shift`), as in Megatron's DynamicLossScaler."""

    def __init__(
        self,
        init_scale=2.0**32,
        scale_factor=2.0,
        scale_window=1000,
        min_scale=1.0,
        delayed_shift=1,
        consecutive_hysteresis=False,
    ):
        self.cur_scale = float(init_scale)
        self.scale_factor = scale_factor
        self.scale_window = scale_window
        self.min_scale = float(min_scale)
        self.delayed_shift = delayed_shift
        self.cur_hysteresis = delayed_shift
        self.consecutive_hysteresis = consecutive_hysteresis
        self.cur_iter = 0
        self.last_overflow_iter = -1

    @property
    def loss_scale(self) -> float:
        return self.cur_scale

    def update_scale(self, overflow: bool) -> None:
        """Halve on (delayed) overflow; grow after scale_window clean iterations."""
        if overflow:
            if self.delayed_shift == 1 or self.cur_hysteresis == 1:
                self.cur_scale = max(self.cur_scale / self.scale_factor, self.min_scale)
            else:
                self.cur_hysteresis -= 1
            self.last_overflow_iter = self.cur_iter
        else:
            if self.consecutive_hysteresis:
                self.cur_hysteresis = self.delayed_shift
            if (self.cur_iter - self.last_overflow_iter) % self.scale_window == 0:
                if not self.consecutive_hysteresis:
                    self.cur_hysteresis = self.delayed_shift
                self.cur_scale *= self.scale_factor
        self.cur_iter += 1

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


class StaticLossScaler:
    """A fixed loss scale."""

    def __init__(self, scale: float = 1.0):
        self.cur_scale = float(scale)

    @property
    def loss_scale(self) -> float:
        return self.cur_scale

    def update_scale(self, overflow: bool) -> None:
        pass

    def state_dict(self) -> dict:
        return {"cur_scale": self.cur_scale}

    def load_state_dict(self, state: dict) -> None:
        self.cur_scale = state["cur_scale"]


class FP16Optimizer:
    """Steps an fp32 copy of the fp16 parameters; the model's backward multiplies the loss by `loss_scale`."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        static_loss_scale=1.0,
        dynamic_loss_scale=False,
        dynamic_loss_args=None,
    ):
        self.optimizer = optimizer
        self.pairs: list[tuple[torch.nn.Parameter, torch.nn.Parameter]] = []  # (model fp16 param, fp32 master)
        for group in optimizer.param_groups:
            masters = []
            for p in group["params"]:
                master = torch.nn.Parameter(p.detach().float().clone()) if p.dtype == torch.float16 else p
                self.pairs.append((p, master))
                masters.append(master)
            group["params"] = masters
        if dynamic_loss_scale:
            self.loss_scaler = DynamicLossScaler(**(dynamic_loss_args or {}))
        else:
            self.loss_scaler = StaticLossScaler(static_loss_scale or 1.0)
        self.overflow = False
        self._master_grads_ready = False

    @property
    def loss_scale(self) -> float:
        return self.loss_scaler.loss_scale

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p, master in self.pairs:
            p.grad = None if set_to_none else (p.grad.zero_() if p.grad is not None else None)
            if master is not p:
                master.grad = None
        self._master_grads_ready = False

    def _update_master_grads(self) -> None:
        """Copy fp16 grads into the fp32 masters, unscale them, and detect inf/nan."""
        if self._master_grads_ready:
            return
        overflow = False
        for p, master in self.pairs:
            if p.grad is None:
                continue
            grad = p.grad.detach().float() / self.loss_scale
            overflow = overflow or not bool(torch.isfinite(grad).all())
            master.grad = grad
        self.overflow = overflow
        self._master_grads_ready = True

    def clip_master_grads(self, max_norm: float, norm_type: float = 2.0) -> float:
        """Clip the fp32 master gradients; returns their norm, or -1 on overflow (as Megatron's does)."""
        self._update_master_grads()
        if self.overflow:
            return -1.0
        masters = [m for _, m in self.pairs if m.grad is not None]
        return float(torch.nn.utils.clip_grad_norm_(masters, max_norm, norm_type=norm_type))

    def step(self, closure=None) -> None:
        """Skip the step and lower the scale on overflow; else step the masters and copy them into the model."""
        self._update_master_grads()
        self.loss_scaler.update_scale(self.overflow)
        if not self.overflow:
            self.optimizer.step(closure)
            with torch.no_grad():
                for p, master in self.pairs:
                    if master is not p:
                        p.copy_(master)
        self._master_grads_ready = False

    def state_dict(self) -> dict:
        return {
            "optimizer_state_dict": self.optimizer.state_dict(),
            "loss_scaler": self.loss_scaler.state_dict(),
            "overflow": self.overflow,
            "fp32_from_fp16": [m.detach().clone() for _, m in self.pairs],
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer_state_dict"])
        self.loss_scaler.load_state_dict(state["loss_scaler"])
        self.overflow = state["overflow"]
        with torch.no_grad():
            for (p, master), saved in zip(self.pairs, state["fp32_from_fp16"], strict=True):
                master.copy_(saved)
                p.copy_(saved)
