"""Float8 training (``--precision fp8``): torchao's ``Float8Linear`` in place of the blocks' ``nn.Linear``.

Each swapped layer keeps its fp32 master weight and bias; in the forward it scales and casts its input and weight to
float8 e4m3 and multiplies them with ``torch._scaled_mm`` (output in the autocast dtype), in the backward the output
gradient goes to e5m2 (torchao ``Float8LinearConfig.from_recipe_name``). Everything else runs as in bf16: embeddings,
LayerNorms, attention (SDPA), the tied lm_head and the loss, AdamW on fp32 weights. The model must be compiled:
inductor fuses the amax reductions and casts into the neighbouring kernels, without it they are extra HBM passes.

Needs: torchao in the image (SageMaker's PyTorch DLCs do not ship it), bf16 autocast, tensor_parallel_degree 1,
and on CUDA a GPU of compute capability 8.9 or newer (H100, H200, L4: float8 tensor cores). On the CPU,
``torch._scaled_mm`` has a reference kernel, so local runs and tests take the same code path, slowly. The recipe
(tensorwise or rowwise) is levers.py's SMLAUNCH_FP8_RECIPE. parallelize() turns the fused q/k/v GEMM off first: it
calls F.linear on the concatenated weights, which would bypass Float8Linear.
"""

from __future__ import annotations

import torch

MIN_CAPABILITY = (8, 9)


def float8_eligible(module: torch.nn.Module, fqn: str) -> bool:
    """A block's Linear whose both dimensions are multiples of 16 (``torch._scaled_mm``'s requirement)."""
    return (
        fqn.startswith("blocks.")
        and isinstance(module, torch.nn.Linear)
        and module.in_features % 16 == 0
        and module.out_features % 16 == 0
    )


def to_float8(stage: torch.nn.Module, *, device: torch.device, recipe: str) -> int:
    """Swap the eligible Linear layers of ``stage`` for Float8Linear in place; returns how many were swapped."""
    try:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    except ImportError as exc:
        raise RuntimeError(
            "--precision fp8 needs torchao (float8 training), which this image does not have: use an image with "
            f"torchao installed (pip install torchao), or train in bf16 (import failed: {exc})"
        ) from exc
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability < MIN_CAPABILITY:
            raise RuntimeError(
                f"--precision fp8 needs float8 tensor cores (compute capability >= 8.9: H100, H200, L4); "
                f"{torch.cuda.get_device_name(device)} is {capability[0]}.{capability[1]}: train in bf16"
            )
    config = Float8LinearConfig.from_recipe_name(recipe)
    convert_to_float8_training(stage, config=config, module_filter_fn=float8_eligible)
    swapped = sum(type(m).__name__ == "Float8Linear" for m in stage.modules())
    if not swapped:
        raise RuntimeError(
            "--precision fp8: no Linear of the blocks has both dimensions divisible by 16, so nothing would run in "
            "float8: use a hidden_width that is a multiple of 16, or train in bf16"
        )
    return swapped
