"""Pure data: GPUs, SageMaker instance types and GPT-2 size presets.

The one hardware catalog: everything that needs a GPU's or an instance's numbers reads them here. Every number
carries its source. Prices are SageMaker on-demand prices (USD per instance-hour) with their region, source, date
and component (training, or hosting where no training-labelled figure was found); they drift, so treat cost
estimates as estimates, and an unknown price stays unknown (None: p5e, p5en, g6.16xlarge).
Peak FLOP/s are the vendors' dense (no sparsity) numbers.
"""

from __future__ import annotations

import math
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
    """An on-demand SageMaker price per instance-hour, where it comes from and what its source calls it."""

    usd_per_hour: float
    region: str
    source: str
    as_of: str
    component: str = "training"
    """What the source prices: ``training`` (SageMaker training jobs), or ``hosting`` where no training-labelled
    figure of the same date was found (SageMaker charges the same rate for both on every instance where both are
    sourced here: g5.xlarge to g5.48xlarge, p5.48xlarge)."""


# Sources of the prices (checked 2026-12-03; no AWS Price List call can be made from here, so each number is
# quoted from a dated public copy of AWS's Price List and named with it). Run
#   aws pricing get-products --service-code AmazonSageMaker \
#     --filters Type=TERM_MATCH,Field=usagetype,Value=USE1-Train:<instance type>
# to refresh one.
PRICE_LIST_USE1 = "AWS Price List, AmazonSageMaker usage type USE1-Train:<type> (public bulk CSV of 2026-09-24)"
PRICE_LIST_USW2 = (
    "AWS Price List, AmazonSageMaker Training component, us-west-2 (a public table of it; g5.xlarge, g5.2xlarge and "
    "g6.xlarge equal their us-east-1 USE1-Train rates)"
)
HOLORI = "calculator.holori.com/aws/sagemaker/<type>-training (SageMaker training, on-demand, US East)"
CLOUDPRICE_HOSTING = "cloudprice.net, SageMaker real-time inference, us-east-1 (no 2026 training-labelled rate found)"
OLD_TABLE = "a SageMaker GPU price table linking aws.amazon.com/sagemaker/pricing (goerlitz/nlp-classification)"


def _use1(usd: float, as_of: str = "2026-09-24") -> Price:
    return Price(usd, "us-east-1", PRICE_LIST_USE1, as_of)


def _usw2(usd: float) -> Price:
    return Price(usd, "us-west-2", PRICE_LIST_USW2, "2026")


@dataclass(frozen=True, slots=True)
class Instance:
    """A SageMaker training instance type."""

    name: str
    gpu: Gpu
    num_gpus: int
    network_gbps: float
    """Inter-node bandwidth in Gbit/s (the EC2 instance's baseline)."""
    efa: bool
    """The EC2 instance type supports EFA (aws/karpenter-provider-aws instance-types.md, eksctl EFASupported)."""
    price: Price | None
    """On-demand price (None: unknown, and costs say so rather than $0)."""
    smp_v1: bool
    """Supported by SMP v1 (smp-v1.md §5: p3.16xlarge, p3dn, p4d, p4de, g4dn.12xlarge)."""
    host_memory_gib: float
    """CPU memory of the instance (AWS instance-type pages)."""

    @property
    def price_per_hour(self) -> float:
        """USD per instance-hour for ordering; infinite when the price is unknown, so that an unpriced instance is
        never picked as the cheap one (check :attr:`price` before showing a cost)."""
        return self.price.usd_per_hour if self.price is not None else math.inf


INSTANCES: dict[str, Instance] = {
    i.name: i
    for i in (
        # SMP v1 and the torch engine
        Instance("ml.p4d.24xlarge", A100_40GB, 8, 400.0, True, Price(25.25, "us-east-1", CLOUDPRICE_HOSTING,
                 "2026-06-18", "hosting"), True, 1152),
        Instance("ml.p4de.24xlarge", A100_80GB, 8, 400.0, True, Price(33.52, "us-east-1", CLOUDPRICE_HOSTING,
                 "2026-06-18", "hosting"), True, 1152),
        # SMP v1 only
        Instance("ml.p3.16xlarge", V100_16GB, 8, 25.0, False, Price(28.152, "us-east-1", OLD_TABLE, "undated"),
                 True, 488),
        Instance("ml.p3dn.24xlarge", V100_32GB, 8, 100.0, True, Price(35.894, "us-east-1", OLD_TABLE, "undated"),
                 True, 768),
        Instance("ml.g4dn.12xlarge", T4_16GB, 4, 50.0, True, Price(4.890, "us-east-1", HOLORI, "2026-04"), True, 192),
        # the torch engine only: H100/H200 (p5, p5e, p5en), A10G (g5), L4 (g6)
        Instance("ml.p5.48xlarge", H100_80GB, 8, 3200.0, True, Price(63.296, "us-east-1", HOLORI, "2026"), False,
                 2048),
        Instance("ml.p5e.48xlarge", H200_141GB, 8, 3200.0, True, None, False, 2048),
        Instance("ml.p5en.48xlarge", H200_141GB, 8, 3200.0, True, None, False, 2048),
        Instance("ml.g5.xlarge", A10G_24GB, 1, 2.5, False, _use1(1.408), False, 16),
        Instance("ml.g5.2xlarge", A10G_24GB, 1, 5.0, False, _use1(1.515, "2026-08-20"), False, 32),
        Instance("ml.g5.4xlarge", A10G_24GB, 1, 10.0, False, _usw2(2.03), False, 64),
        Instance("ml.g5.8xlarge", A10G_24GB, 1, 25.0, True, _usw2(3.06), False, 128),
        Instance("ml.g5.16xlarge", A10G_24GB, 1, 25.0, True, _usw2(5.12), False, 256),
        Instance("ml.g5.12xlarge", A10G_24GB, 4, 40.0, True, _usw2(7.09), False, 192),
        Instance("ml.g5.24xlarge", A10G_24GB, 4, 50.0, True, _usw2(10.18), False, 384),
        Instance("ml.g5.48xlarge", A10G_24GB, 8, 100.0, True, _usw2(20.36), False, 768),
        Instance("ml.g6.xlarge", L4_24GB, 1, 2.5, False, _use1(1.127), False, 16),
        Instance("ml.g6.2xlarge", L4_24GB, 1, 5.0, False, _usw2(1.222), False, 32),
        Instance("ml.g6.4xlarge", L4_24GB, 1, 10.0, False, _usw2(1.654), False, 64),
        Instance("ml.g6.8xlarge", L4_24GB, 1, 25.0, True, _usw2(2.518), False, 128),
        Instance("ml.g6.16xlarge", L4_24GB, 1, 25.0, True, None, False, 256),
        Instance("ml.g6.12xlarge", L4_24GB, 4, 40.0, True, _usw2(5.752), False, 192),
        Instance("ml.g6.24xlarge", L4_24GB, 4, 50.0, True, _usw2(8.344), False, 384),
        Instance("ml.g6.48xlarge", L4_24GB, 8, 100.0, True, _usw2(16.688), False, 768),
    )
}  # fmt: skip


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
