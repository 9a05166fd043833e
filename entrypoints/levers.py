"""Speed switches of the native path, outside the contract: read once from the environment, so a benchmark can
measure one lever against another with the same hyperparameters (benchmarks/vs_nanogpt.py). The defaults are what
the measurements in benchmarks/results.md ("Against nanoGPT") chose; nothing here changes the math beyond bf16
rounding order.

    SMLAUNCH_COMPILE_SCOPE  model (default): with --compile 1 on a plain single-stage layout (tp = pp = 1, no FSDP),
                            embedding + blocks + head + loss are one torch.compile graph; block: each block and
                            the head + loss separately (what every other layout does)
    SMLAUNCH_COMPILE_MODE   torch.compile mode: "" (default), reduce-overhead (CUDA graphs), max-autotune, ...
    SMLAUNCH_FUSED_QKV      1 (default): without tensor parallelism, q/k/v run as one GEMM over their concatenated
                            weights (nanoGPT's c_attn); 0: three GEMMs. Parameters and checkpoints are the same
    SMLAUNCH_SDPA           auto (default: PyTorch's choice) | cudnn | flash | efficient | math: the only
                            scaled_dot_product_attention backend allowed on CUDA (math stays as the fallback)
    SMLAUNCH_FP8_RECIPE     tensorwise (default: one scale per tensor) | rowwise (one per row; torchao's more accurate
                            recipe): the float8 recipe of --precision fp8 (fp8.py)
    SMLAUNCH_LOG_EVERY      steps per host sync for the loss/log lines; 0 (default) = 1 on CPU, 10 on CUDA. Lines
                            still come one per step, printed together when the window ends; SIGTERM is honoured at
                            the end of a window
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SDPA_BACKENDS = ("auto", "cudnn", "flash", "efficient", "math")
FP8_RECIPES = ("tensorwise", "rowwise")


@dataclass(frozen=True)
class Levers:
    compile_scope: str = "model"
    compile_mode: str = ""
    fused_qkv: bool = True
    sdpa: str = "auto"
    log_every: int = 0
    fp8_recipe: str = "tensorwise"

    @classmethod
    def from_env(cls, env=None) -> Levers:
        env = os.environ if env is None else env
        levers = cls(
            compile_scope=env.get("SMLAUNCH_COMPILE_SCOPE", "model") or "model",
            compile_mode=env.get("SMLAUNCH_COMPILE_MODE", ""),
            fused_qkv=env.get("SMLAUNCH_FUSED_QKV", "1") != "0",
            sdpa=env.get("SMLAUNCH_SDPA", "auto") or "auto",
            log_every=int(env.get("SMLAUNCH_LOG_EVERY", "0") or 0),
            fp8_recipe=env.get("SMLAUNCH_FP8_RECIPE", "") or "tensorwise",
        )
        if levers.compile_scope not in ("model", "block"):
            raise ValueError(f"SMLAUNCH_COMPILE_SCOPE={levers.compile_scope!r}: expected model or block")
        if levers.sdpa not in SDPA_BACKENDS:
            raise ValueError(f"SMLAUNCH_SDPA={levers.sdpa!r}: expected one of {', '.join(SDPA_BACKENDS)}")
        if levers.fp8_recipe not in FP8_RECIPES:
            raise ValueError(f"SMLAUNCH_FP8_RECIPE={levers.fp8_recipe!r}: expected one of {', '.join(FP8_RECIPES)}")
        if levers.log_every < 0:
            raise ValueError(f"SMLAUNCH_LOG_EVERY={levers.log_every}: expected >= 0")
        return levers

    def steps_per_sync(self, device_type: str) -> int:
        if self.log_every:
            return self.log_every
        return 10 if device_type == "cuda" else 1

    def compile_kwargs(self) -> dict:
        return {"mode": self.compile_mode} if self.compile_mode else {}

    def apply_sdpa(self) -> None:
        """Restrict SDPA to one backend (plus math as the fallback) on CUDA; a no-op for auto and on the CPU."""
        import torch

        if self.sdpa == "auto" or not torch.cuda.is_available():
            return
        b = torch.backends.cuda
        b.enable_cudnn_sdp(self.sdpa == "cudnn")
        b.enable_flash_sdp(self.sdpa == "flash")
        b.enable_mem_efficient_sdp(self.sdpa == "efficient")
        b.enable_math_sdp(True)
