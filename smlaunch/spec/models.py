"""The typed job spec: what a user writes in ``job.yaml``.

Field names are the user-facing contract. Under ``smp:`` they are SMP v1's own names and defaults, so a
user can paste parameters from AWS documentation. Every model forbids unknown keys and is frozen; derived
values (data-parallel degree, global batch, ...) live in :mod:`smlaunch.layout`, rules in
:mod:`smlaunch.spec.rules`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from smlaunch.catalog import INSTANCES, PRESETS
from smlaunch.engines import DEFAULT_ENGINE, ENGINES, TORCH, TORCH_DISTRIBUTED_GPU_FRAMEWORKS, full_framework_version
from smlaunch.spec.entry_point_spec import EntryPointSpec
from smlaunch.spec.fields import (
    MAX_RUN_HOURS,
    Count,
    FiniteFloat,
    Int32,
    Int64,
    PositiveFloat,
    PositiveInt,
    Strict,
    seconds_in_range,
)

CHECKPOINTING_PATTERN = r"^(none|each|contiguous|group_[1-9][0-9]{0,8})$"
PLACEMENTS = ("cluster", "spread", "DPT", "DTP", "PDT", "PTD", "TDP", "TPD")


class ModelSpec(Strict):
    """The GPT-2 model: a preset, explicit shape keys, or a preset with some keys overridden."""

    preset: Literal[tuple(PRESETS)] | None = Field(  # type: ignore[valid-type]
        None, description="A GPT-2 size: " + ", ".join(PRESETS) + ". Explicit keys below override it."
    )
    num_layers: Annotated[int, Field(gt=0, le=10_000)] = Field(description="Transformer blocks.")
    hidden_width: Annotated[int, Field(gt=0, le=2**20)] = Field(description="Model width (d_model).")
    num_heads: Annotated[int, Field(gt=0, le=2**16)] = Field(description="Attention heads; must divide hidden_width.")
    seq_length: Annotated[int, Field(gt=0, le=2**24)] = Field(description="Tokens per sample (context length).")
    vocab_size: Annotated[int, Field(gt=0, le=2**24)] = Field(
        description="Vocabulary size before padding for tensor parallelism."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in PRESETS:
            shape = PRESETS[data["preset"]]
            data = {**{f: getattr(shape, f) for f in shape.__dataclass_fields__}, **data}
        return data

    def num_params(self) -> int:
        """Parameter count (tied embeddings, learned positions), before vocabulary padding."""
        from smlaunch.catalog import ModelShape

        return ModelShape(
            self.num_layers, self.hidden_width, self.num_heads, self.seq_length, self.vocab_size
        ).num_params()


class SpotSpec(Strict):
    """Managed spot training."""

    enabled: bool = Field(False, description="Use managed spot instances (needs checkpointing to resume).")
    max_wait_hours: PositiveFloat | None = Field(
        None, description="Longest wait for spot capacity plus run time; default max_run_hours + 24."
    )

    @field_validator("max_wait_hours")
    @classmethod
    def _wait_in_seconds(cls, value: float | None) -> float | None:
        return seconds_in_range("max_wait_hours", value)


class ClusterSpec(Strict):
    """The SageMaker training cluster."""

    instance_type: str = Field(pattern=r"^ml\.", description="SageMaker instance type, e.g. ml.p4d.24xlarge.")
    instance_count: PositiveInt = Field(1, description="Number of instances (nodes).")
    processes_per_host: Annotated[int, Field(gt=0, le=1024)] | None = Field(
        None, description="MPI processes per instance, one per GPU; default: the instance's GPU count."
    )
    volume_size_gb: PositiveInt = Field(100, description="EBS volume per instance, GB.")
    max_run_hours: PositiveFloat = Field(
        24.0,
        le=MAX_RUN_HOURS,
        description=(
            "SageMaker stops the job after this many hours; at most 672 (28 days: CreateTrainingJob's "
            "StoppingCondition.MaxRuntimeInSeconds is at most 2,419,200 s)."
        ),
    )
    spot: SpotSpec = Field(default_factory=SpotSpec)

    @field_validator("max_run_hours")
    @classmethod
    def _run_in_seconds(cls, value: float) -> float:
        return seconds_in_range("max_run_hours", value)

    @property
    def gpus_per_host(self) -> int | None:
        """Processes per host as resolved: the explicit value, else the catalog's GPU count."""
        if self.processes_per_host is not None:
            return self.processes_per_host
        instance = INSTANCES.get(self.instance_type)
        return instance.num_gpus if instance else None


class SmpSpec(Strict):
    """SMP v1 ``modelparallel`` parameters, under SMP's own names and defaults (smp-v1.md §3)."""

    pipeline_parallel_degree: PositiveInt = Field(
        1, alias="partitions", description="Pipeline stages (SMP's `partitions`). 1 means no pipeline."
    )
    tensor_parallel_degree: PositiveInt = Field(1, description="Tensor parallel degree. 1 means disabled.")
    microbatches: PositiveInt = Field(1, description="Pipeline microbatches per step; 1 means no pipelining.")
    active_microbatches: PositiveInt | None = Field(
        None, description="Most microbatches in flight; default pipeline_parallel_degree + 2, capped at microbatches."
    )
    prescaled_batch: bool = Field(
        False, description="Every rank of a tensor-parallel group gets the same batch; data sharded by rdp rank."
    )
    shard_optimizer_state: bool = Field(False, description="Shard optimizer state over data-parallel ranks.")
    ddp: bool = Field(False, description="Data parallelism through DDP; required when tensor_parallel_degree > 1.")
    placement_strategy: Literal[PLACEMENTS] = Field(  # type: ignore[valid-type]
        "cluster", description="cluster (= DPT: tensor parallel ranks on neighbouring GPUs) or spread (= TPD)."
    )
    pipeline: Literal["interleaved", "simple"] = Field("interleaved", description="Pipeline schedule.")
    optimize: Literal["memory", "speed"] = Field(
        "memory", description="memory: sequence-parallel activations; speed: less communication."
    )
    offload_activations: bool = Field(False, description="Keep checkpointed activations on the host (CPU).")
    activation_loading_horizon: Int32 = Field(4, description="Pipeline tasks ahead to prefetch offloaded activations.")
    fp16: bool = Field(False, description="FP16 mixed precision (FP16_Module / FP16_Optimizer).")
    fp16_params: bool = Field(
        False,
        description=(
            "SMP >= 1.6: initialize the parameters of the distributed modules in FP16 (older notebooks use it "
            "beside or instead of fp16). Sent to SMP only when set."
        ),
    )
    bf16: bool = Field(False, description="BF16; in SMP v1 only with sharded data parallelism.")
    delayed_parameter_initialization: bool = Field(False, description="Create parameters on their device only.")
    auto_partition: bool = Field(True, description="Let SMP place modules on pipeline stages.")
    default_partition: Int32 | None = Field(
        None, description="Stage for unplaced modules when auto_partition is false."
    )
    memory_weight: FiniteFloat | None = Field(
        None, description="Auto-partition memory vs compute balance in [0, 1]; default 0.8 (memory) / 0.2 (speed)."
    )
    skip_tracing: bool = Field(False, description="Skip the tracing step (huge models).")
    deterministic_server: bool = Field(False, description="Same execution order on every data-parallel rank.")
    ddp_port: int | None = Field(None, ge=1, le=65535, description="DDP port (1-65535); requires ddp.")
    ddp_dist_backend: Literal["auto", "nccl"] | None = Field(None, description="auto (SMDDP) or nccl; requires ddp.")
    sharded_data_parallel_degree: PositiveInt = Field(1, description="> 1 turns on sharded data parallelism.")
    sdp_reduce_bucket_size: PositiveInt = Field(500_000_000, description="Sharded DP reduce bucket (elements).")
    sdp_param_persistence_threshold: PositiveInt = Field(1_000_000, description="Sharded DP persistence threshold.")
    sdp_max_live_parameters: PositiveInt = Field(1_000_000_000, description="Sharded DP live-parameter cap.")
    sdp_hierarchical_allgather: bool = Field(True, description="Sharded DP hierarchical all-gather.")
    sdp_gradient_clipping: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = Field(
        1.0, description="Sharded DP gradient clipping norm."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_pp(cls, data: Any) -> Any:
        if isinstance(data, dict) and "partitions" in data and "pipeline_parallel_degree" in data:
            if data["partitions"] != data["pipeline_parallel_degree"]:
                raise ValueError(
                    f"partitions({data['partitions']}) and pipeline_parallel_degree"
                    f"({data['pipeline_parallel_degree']}) are the same setting: keep one"
                )
            data = {k: v for k, v in data.items() if k != "partitions"}
        return data

    @property
    def resolved_active_microbatches(self) -> int:
        """``active_microbatches`` as SMP uses it: default pp + 2, never more than ``microbatches``."""
        value = self.active_microbatches or self.pipeline_parallel_degree + 2
        return min(value, self.microbatches)

    def to_mp_parameters(self) -> dict[str, Any]:
        """The SMP ``parameters`` dict, as sent in ``mp_parameters``. ``partitions`` is always emitted."""
        core = {
            "partitions": self.pipeline_parallel_degree,
            "tensor_parallel_degree": self.tensor_parallel_degree,
            "microbatches": self.microbatches,
            "active_microbatches": self.resolved_active_microbatches,
            "pipeline": self.pipeline,
            "optimize": self.optimize,
            "placement_strategy": self.placement_strategy,
            "ddp": self.ddp,
            "prescaled_batch": self.prescaled_batch,
            "shard_optimizer_state": self.shard_optimizer_state,
            "offload_activations": self.offload_activations,
            "fp16": self.fp16,
            "bf16": self.bf16,
            "delayed_parameter_initialization": self.delayed_parameter_initialization,
            "auto_partition": self.auto_partition,
        }
        explicit = {
            name: getattr(self, name)
            for name in sorted(self.model_fields_set)
            if name not in core and name != "pipeline_parallel_degree" and getattr(self, name) is not None
        }
        if self.offload_activations:
            explicit["activation_loading_horizon"] = self.activation_loading_horizon
        if not self.auto_partition:
            explicit["default_partition"] = self.default_partition if self.default_partition is not None else 0
        if self.sharded_data_parallel_degree > 1:
            explicit.update({n: getattr(self, n) for n in type(self).model_fields if n.startswith("sdp_")})
        return {**core, **dict(sorted(explicit.items()))}


class TrainingSpec(Strict):
    """What the entry point trains."""

    batch_size: PositiveInt = Field(
        description=(
            "Samples per step, in the reference table's meaning: per model-parallel group (tp x pp ranks) when "
            "smp.prescaled_batch is true, per data-parallel rank (dp = world / pp) otherwise."
        )
    )
    max_steps: PositiveInt = Field(description="Optimizer steps.")
    lr: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = Field(2e-4, description="Peak AdamW learning rate.")
    min_lr: FiniteFloat = Field(1e-5, ge=0, le=10, description="Final learning rate of the cosine decay.")
    warmup_steps: Count = Field(0, description="Linear warm-up steps.")
    weight_decay: FiniteFloat = Field(0.01, ge=0, le=100, description="AdamW weight decay.")
    grad_clip: FiniteFloat = Field(1.0, ge=0, le=1e6, description="Gradient-norm clip; 0 disables.")
    seed: Int64 = Field(12345, description="Seeds model init and data sampling.")
    activation_checkpointing: str = Field(
        "none",
        pattern=CHECKPOINTING_PATTERN,
        description="none | each (every block) | contiguous (one per pipeline stage) | group_<n> (n blocks).",
    )
    checkpoint_every_steps: Count = Field(0, description="Checkpoint every N steps; 0 = only on stop/end.")
    final_save: bool = Field(
        False,
        description=(
            "Save the full model at the end (the entry point's final_save): every parameter gathered to one rank, "
            "written to /opt/ml/model and uploaded as model.tar.gz before the job can finish, all billed time; "
            "about 2 bytes per parameter in fp16/bf16 (4 in fp32), e.g. about 120 GB for 60B. Partial checkpoints "
            "(checkpoint_every_steps, output.checkpoint_s3_uri) are enough to resume. AWS's GPT-2 example makes "
            "it opt-in too (save_final_full_model)."
        ),
    )


class OutputSpec(Strict):
    """Where SageMaker writes results."""

    s3_path: str | None = Field(None, description="S3 prefix for model artifacts (output_path); default bucket.")
    checkpoint_s3_uri: str | None = Field(None, description="S3 prefix synced with /opt/ml/checkpoints.")


class SageMakerSpec(Strict):
    """SageMaker estimator settings that are not cluster shape or SMP parameters."""

    role: str | None = Field(None, description="IAM role ARN the job runs as (required to submit).")
    region: str | None = Field(None, description="AWS region; default from the AWS configuration.")
    framework_version: str = Field(
        "1.13.1",
        description=(
            "PyTorch DLC version. engine smp: an SMP v1 DLC (1.13.1 default, or 2.0.0); engine torch: a "
            "torch_distributed GPU image, 2.8.0 (the newest the SDK supports, the oldest the native entry point "
            "runs on)."
        ),
    )
    py_version: str = Field(
        "py39",
        description="Python of the DLC (py39 for 1.13.1, py310 for 2.0.0, py312 for 2.8.0); follows the engine.",
    )
    image_uri: str | None = Field(None, description="A custom training image instead of the DLC.")
    environment: dict[str, str] = Field(default_factory=dict, description="Environment variables of the job.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags of the training job.")
    subnets: list[str] = Field(default_factory=list, description="VPC subnets.")
    security_group_ids: list[str] = Field(default_factory=list, description="VPC security groups.")
    volume_kms_key: str | None = Field(None, description="KMS key for the instance volumes.")
    output_kms_key: str | None = Field(None, description="KMS key for the output.")
    enable_network_isolation: bool = Field(False, description="No network access from the container.")
    encrypt_inter_container_traffic: bool = Field(False, description="Encrypt traffic between instances.")
    custom_mpi_options: str = Field(
        "--mca btl_vader_single_copy_mechanism none -x NCCL_DEBUG=WARN",
        description="Options passed to mpirun (AWS's recommended default).",
    )
    extra_estimator_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Further PyTorch estimator arguments; keys smlaunch owns are refused."
    )


CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class JobSpec(Strict):
    """A whole job: ``name``, ``engine``, ``model``, ``cluster``, ``smp``, ``training``, ``data``, ``output``,
    ``sagemaker``, ``entry_point``."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9](-?[A-Za-z0-9])*$",
        max_length=32,
        description="Job base name (letters, digits, hyphens; at most 32, SageMaker adds a timestamp and hash).",
    )
    engine: Literal[ENGINES] = Field(  # type: ignore[valid-type]
        DEFAULT_ENGINE,
        description=(
            "smp: SMP v1 (smdistributed.modelparallel under MPI; PyTorch <= 2.0, p3/p4d). torch: the PyTorch-native "
            "engine (tensor/sequence parallelism, pipelining, FSDP2) under torchrun on PyTorch 2.8+ images, on "
            "p5/p5e/p5en, p4d/p4de, g5 and g6. The smp: section keeps its names on both."
        ),
    )
    model: ModelSpec
    cluster: ClusterSpec
    smp: SmpSpec = Field(default_factory=SmpSpec)
    training: TrainingSpec
    data: dict[str, str] = Field(
        default_factory=dict,
        description="Channel name -> S3 URI (s3://...) or local path (local:path). No train channel: synthetic data.",
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    sagemaker: SageMakerSpec = Field(default_factory=SageMakerSpec)
    entry_point: EntryPointSpec | None = Field(
        None, description="Your own training script; without it smlaunch's GPT-2 entry points run."
    )

    _source: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _engine_image_defaults(cls, data: Any) -> Any:
        """``engine: torch`` without a framework_version gets the newest torch_distributed image, and a known
        framework_version without a py_version gets its image's Python (SMP keeps SageMakerSpec's defaults)."""
        if not (isinstance(data, dict) and data.get("engine") == "torch"):
            return data
        sm = data.get("sagemaker", {})
        if not isinstance(sm, dict):
            return data
        sm = dict(sm)
        if "framework_version" not in sm and "image_uri" not in sm:
            sm["framework_version"] = TORCH.default_framework[0]
        version = sm.get("framework_version")
        if "py_version" not in sm and isinstance(version, str):
            py = TORCH_DISTRIBUTED_GPU_FRAMEWORKS.get(full_framework_version(version))
            if py is not None:
                sm["py_version"] = py
        return {**data, "sagemaker": sm}

    @field_validator("data")
    @classmethod
    def _channel_names(cls, data: dict[str, str]) -> dict[str, str]:
        for channel in data:
            if not CHANNEL_NAME.fullmatch(channel):
                raise ValueError(f"data channel name {channel!r} must be letters, digits, '.', '_' or '-'")
        return data

    @property
    def source(self):
        """Where the spec came from (:class:`smlaunch.spec.load.Source`): file path and YAML line numbers."""
        return self._source
