"""Pure data: GPUs, SageMaker instance types and GPT-2 size presets.

Every number carries its source. Prices are SageMaker training on-demand prices in us-east-1 (USD per
instance-hour) as published on the SageMaker pricing page; they drift, so treat cost estimates as
estimates. Peak FLOP/s are the vendors' dense (no sparsity) tensor-core numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Gpu:
    """One accelerator model."""

    name: str
    memory_gib: float
    """Device memory as the driver reports it (A100-SXM4-40GB: 40960 MiB)."""
    peak_tflops_16bit: float
    """Dense fp16/bf16 tensor-core peak (V100 and T4: fp16 only)."""
    supports_bf16: bool
    nvlink_gbps: float
    """Per-GPU intra-node bandwidth in GB/s, one direction (NVLink, or PCIe where there is none)."""


A100_40GB = Gpu("A100-SXM4-40GB", 40.0, 312.0, True, 300.0)  # NVIDIA A100 datasheet; NVLink3 600 GB/s bidir
A100_80GB = Gpu("A100-SXM4-80GB", 80.0, 312.0, True, 300.0)
V100_16GB = Gpu("V100-SXM2-16GB", 16.0, 125.0, False, 150.0)  # NVLink2 300 GB/s bidir
V100_32GB = Gpu("V100-SXM2-32GB", 32.0, 125.0, False, 150.0)
T4_16GB = Gpu("T4", 15.0, 65.0, False, 16.0)  # PCIe gen3 x16; 15360 MiB usable
A10G_24GB = Gpu("A10G", 22.0, 125.0, True, 16.0)  # 22.5 GiB usable; PCIe gen4
H100_80GB = Gpu("H100-SXM5-80GB", 79.6, 989.0, True, 450.0)  # 81559 MiB; NVLink4 900 GB/s bidir


@dataclass(frozen=True, slots=True)
class Instance:
    """A SageMaker training instance type."""

    name: str
    gpu: Gpu
    num_gpus: int
    network_gbps: float
    """Inter-node bandwidth in Gbit/s."""
    efa: bool
    price_per_hour: float
    """On-demand SageMaker training price, us-east-1, USD per instance-hour."""
    smp_v1: bool
    """Supported by SMP v1 (smp-v1.md §5: p3.16xlarge, p3dn, p4d, p4de, g4dn.12xlarge)."""


INSTANCES: dict[str, Instance] = {
    i.name: i
    for i in (
        Instance("ml.p4d.24xlarge", A100_40GB, 8, 400.0, True, 37.688, True),
        Instance("ml.p4de.24xlarge", A100_80GB, 8, 400.0, True, 47.110, True),
        Instance("ml.p3.16xlarge", V100_16GB, 8, 25.0, False, 28.152, True),
        Instance("ml.p3dn.24xlarge", V100_32GB, 8, 100.0, True, 35.894, True),
        Instance("ml.g4dn.12xlarge", T4_16GB, 4, 50.0, False, 4.890, True),
        Instance("ml.g5.12xlarge", A10G_24GB, 4, 40.0, False, 7.090, False),
        Instance("ml.g5.48xlarge", A10G_24GB, 8, 100.0, True, 20.360, False),
        Instance("ml.p5.48xlarge", H100_80GB, 8, 3200.0, True, 113.070, False),
    )
}

SPOT_PRICE_FRACTION = 0.30
"""Managed spot training typically bills 10-40% of on-demand (AWS: "up to 90%" savings); we assume 30%."""


@dataclass(frozen=True, slots=True)
class ModelShape:
    """A GPT-2 shape. ``vocab_size`` is before padding for tensor parallelism."""

    num_layers: int
    hidden_width: int
    num_heads: int
    seq_length: int
    vocab_size: int

    def num_params(self) -> int:
        """Parameters of a GPT-2 with tied embeddings and learned positions.

        Per block: attention 4·H² + 4·H, MLP 8·H² + 5·H, two LayerNorms 4·H; plus token and position
        embeddings and the final LayerNorm.
        """
        h = self.hidden_width
        per_block = 12 * h * h + 13 * h
        return self.num_layers * per_block + (self.vocab_size + self.seq_length) * h + 2 * h


PRESETS: dict[str, ModelShape] = {
    # OpenAI GPT-2 shapes (seq 1024, vocab 50257).
    "gpt2-small": ModelShape(12, 768, 12, 1024, 50257),
    "gpt2-medium": ModelShape(24, 1024, 16, 1024, 50257),
    "gpt2-large": ModelShape(36, 1280, 20, 1024, 50257),
    "gpt2-xl": ModelShape(48, 1600, 25, 1024, 50257),
    # Reference-table models (seq 512, vocab 50,000; smp-best-practices.txt). gpt2-30b is the AWS notebook's
    # shape (48 x 7168 x 64); the 10B and 60B shapes keep head_dim 128 and heads divisible by tp = 8.
    "gpt2-10b": ModelShape(32, 5120, 40, 512, 50000),
    "gpt2-30b": ModelShape(48, 7168, 64, 512, 50000),
    "gpt2-60b": ModelShape(74, 8192, 64, 512, 50000),
}

PRESET_NOMINAL_PARAMS: dict[str, float] = {
    "gpt2-small": 124e6,
    "gpt2-medium": 350e6,
    "gpt2-large": 774e6,
    "gpt2-xl": 1.5e9,
    "gpt2-10b": 10e9,
    "gpt2-30b": 30e9,
    "gpt2-60b": 60e9,
}

SUPPORTED_FRAMEWORKS: dict[str, str] = {
    # framework_version -> py_version of the SMP v1 PyTorch DLCs (smp-v1.md §5, §9).
    "2.0.0": "py310",
    "1.13.1": "py39",
    "1.12.1": "py38",
    "1.12.0": "py38",
    "1.11.0": "py38",
    "1.10.2": "py38",
    "1.10.0": "py38",
    "1.9.1": "py38",
    "1.8.1": "py36",
}
