"""Pure data: GPUs, SageMaker instance types and GPT-2 size presets.

The one hardware catalog: everything that needs a GPU's or an instance's numbers reads them here. Every number
carries its source. Prices are SageMaker training on-demand prices (USD per instance-hour) with their region,
source and date; they drift, so treat cost estimates as estimates, and an unknown price stays unknown (None).
Peak FLOP/s are the vendors' dense (no sparsity) numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Gpu:
    """One accelerator model (vendor datasheets; dense tensor-core peaks, no sparsity)."""

    name: str
    memory_gib: float
    """Device memory as the driver reports it (A100-SXM4-40GB: 40960 MiB)."""
    peak_tflops_16bit: float
    """Dense fp16/bf16 tensor-core peak (V100 and T4: fp16 only)."""
    supports_bf16: bool
    nvlink_gbps: float
    """Per-GPU intra-node bandwidth in GB/s, one direction (NVLink, or PCIe where there is none)."""
    peak_tflops_fp32: float
    """Plain FP32 (non-tensor-core, no TF32) peak: what an fp32 run's MFU is measured against."""
    hbm_tbps: float
    """Device-memory bandwidth, TB/s."""
    nvlink: bool = True
    """False for PCIe-only GPUs (T4, A10G, L4): tensor parallelism crosses PCIe."""


V100_16GB = Gpu("V100-SXM2-16GB", 16.0, 125.0, False, 150.0, 15.7, 0.9)  # NVLink2 300 GB/s bidir
V100_32GB = Gpu("V100-SXM2-32GB", 32.0, 125.0, False, 150.0, 15.7, 0.9)
T4_16GB = Gpu("T4", 15.0, 65.0, False, 16.0, 8.1, 0.32, nvlink=False)  # PCIe gen3 x16; 15360 MiB usable
A10G_24GB = Gpu("A10G", 22.0, 125.0, True, 16.0, 31.2, 0.6, nvlink=False)  # 22.5 GiB usable; PCIe gen4
L4_24GB = Gpu("L4", 22.0, 121.0, True, 16.0, 30.3, 0.3, nvlink=False)  # NVIDIA L4 datasheet; PCIe gen4
A100_40GB = Gpu("A100-SXM4-40GB", 40.0, 312.0, True, 300.0, 19.5, 1.555)  # A100 datasheet; NVLink3 600 GB/s bidir
A100_80GB = Gpu("A100-SXM4-80GB", 80.0, 312.0, True, 300.0, 19.5, 2.039)
H100_80GB = Gpu("H100-SXM5-80GB", 79.6, 989.0, True, 450.0, 67.0, 3.35)  # 81559 MiB; NVLink4 900 GB/s bidir
H200_141GB = Gpu("H200-SXM-141GB", 139.8, 989.0, True, 450.0, 67.0, 4.8)  # 143771 MiB reported (pytorch-parallel §10)

GPUS: dict[str, Gpu] = {g.name: g for g in (V100_16GB, V100_32GB, T4_16GB, A10G_24GB, L4_24GB, A100_40GB, A100_80GB,
                                            H100_80GB, H200_141GB)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Price:
    """An on-demand SageMaker training price and where it comes from."""

    usd_per_hour: float
    region: str
    source: str
    as_of: str


SAGEMAKER_PRICING = "aws.amazon.com/sagemaker/pricing (Training, On-Demand)"


def _price(usd: float) -> Price:
    # recorded from the SageMaker pricing page when the catalog was first written (commit b864636)
    return Price(usd, "us-east-1", SAGEMAKER_PRICING, "2026-11-22")


@dataclass(frozen=True, slots=True)
class Instance:
    """A SageMaker training instance type."""

    name: str
    gpu: Gpu
    num_gpus: int
    network_gbps: float
    """Inter-node bandwidth in Gbit/s."""
    efa: bool
    price: Price | None
    """On-demand training price (None: unknown, and costs say so rather than $0)."""
    smp_v1: bool
    """Supported by SMP v1 (smp-v1.md §5: p3.16xlarge, p3dn, p4d, p4de, g4dn.12xlarge)."""
    host_memory_gib: float
    """CPU memory of the instance (AWS instance-type pages)."""

    @property
    def price_per_hour(self) -> float:
        """USD per instance-hour; 0.0 when the price is unknown (check :attr:`price`)."""
        return self.price.usd_per_hour if self.price is not None else 0.0


INSTANCES: dict[str, Instance] = {
    i.name: i
    for i in (
        Instance("ml.p4d.24xlarge", A100_40GB, 8, 400.0, True, _price(37.688), True, 1152),
        Instance("ml.p4de.24xlarge", A100_80GB, 8, 400.0, True, _price(47.110), True, 1152),
        Instance("ml.p3.16xlarge", V100_16GB, 8, 25.0, False, _price(28.152), True, 488),
        Instance("ml.p3dn.24xlarge", V100_32GB, 8, 100.0, True, _price(35.894), True, 768),
        Instance("ml.g4dn.12xlarge", T4_16GB, 4, 50.0, False, _price(4.890), True, 192),
        Instance("ml.g5.12xlarge", A10G_24GB, 4, 40.0, False, _price(7.090), False, 192),
        Instance("ml.g5.48xlarge", A10G_24GB, 8, 100.0, True, _price(20.360), False, 768),
        Instance("ml.p5.48xlarge", H100_80GB, 8, 3200.0, True, _price(113.070), False, 2048),
        Instance("ml.p5e.48xlarge", H200_141GB, 8, 3200.0, True, None, False, 2048),
    )
}


def peak_tflops(instance_type: str, precision: str) -> float | None:
    """The dense peak an entry point's MFU is measured against: 16-bit for fp16/bf16, plain FP32 for fp32."""
    instance = INSTANCES.get(instance_type)
    if instance is None:
        return None
    return instance.gpu.peak_tflops_fp32 if precision == "fp32" else instance.gpu.peak_tflops_16bit


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
