"""How spec values are named on an entry point's command line: ``entry_point.arguments``.

    arguments(spec)   # {"train_batch_size": 32, "max_context_width": 512, ...} for arguments: aws-smp-gpt2

Three styles, each a mapping from spec values to the script's argument names:

- ``smlaunch``: smlaunch's own entry points (docs/entrypoint-contract.md, :func:`smlaunch.request.hyperparameters`).
- ``aws-smp-gpt2``: AWS's SMP v1 GPT-2 example, ``train_gpt_simple.py`` (aws/amazon-sagemaker-examples,
  training/distributed_training/pytorch/model_parallel/gpt2, last at daacd32d52ef). :data:`AWS_SMP_GPT2_PARSER`
  is the table of every option its ``parse_args`` defines, written from reading the script; only those are sent,
  because the script's argparse accepts unambiguous prefixes (``--pipeline interleaved`` would be read as
  ``--pipeline_parallel_degree`` and abort it).
- an explicit ``{spec field: argument}`` mapping (:data:`SPEC_VALUES` lists the fields it may name).

The SMP parameters still go in the ``distribution``; only script arguments follow the mapping. Booleans are sent
as 0/1 (the toolkit would pass Python bools as ``True``/``False`` strings). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.spec.models import JobSpec

STYLES = ("smlaunch", "aws-smp-gpt2")
"""The built-in argument styles; ``entry_point.arguments`` is one of these or a ``{spec field: argument}`` map."""

AWS_SMP_GPT2_SCRIPT = "train_gpt_simple.py"

AWS_SMP_GPT2_PARSER: dict[str, str] = {
    # option -> type, every add_argument of train_gpt_simple.py's parse_args (daacd32d52ef, lines 456-676), which
    # ends in parse_known_args: an unknown option is ignored, a prefix of a known one is read as that one.
    **dict.fromkeys(
        "train_batch_size val_batch_size max_steps seed same_seed fp16 bf16 sharded_data_parallel_degree "
        "activation_checkpointing logging_freq use_wiki_data zipped_data epochs parallel_proc_data_processing "
        "save_final_full_model load_partial load_full prescaled_batch max_context_width vocab_size hidden_width "
        "num_layers num_heads use_adamw use_distributed_transformer checkpoint_sublayers tensor_parallel_degree "
        "pipeline_parallel_degree microbatches active_microbatches shard_optimizer_state offload_activations "
        "fast_mode static_mode delayed_param same_partition_load attention_in_fp32 activation_loading_horizon "
        "skip_tracing query_key_layer_scaling fused_softmax fused_dropout fused_bias_gelu gradient_accumulation "
        "num_kept_checkpoints checkpoint_freq validation_freq validation_batches manual_partition "
        "preserve_np_state fast_validation gather_if_shard clean_cache use_fsx enable_memory_profiling "
        "lr_decay_iters time_to_train".split(),
        "int",
    ),
    **dict.fromkeys(
        "grad_clip weight_decay beta1 beta2 resid_pdrop embd_pdrop attn_pdrop summary_first_pdrop lr min_lr "
        "warmup plateau throughput loss".split(),
        "float",
    ),
    **dict.fromkeys(
        "n_gpus output-data-dir checkpoint-dir model-dir training-dir test-dir logits_output optimize "
        "activation_strategy placement_strategy partition_assignment lr_decay_style".split(),
        "str",
    ),
    "ci": "flag",
}
AWS_SMP_GPT2_CHANNELS = ("train", "test")
"""Channels train_gpt_simple.py needs: ``--training-dir``/``--test-dir`` default to ``os.environ["SM_CHANNEL_TRAIN"]``
and ``["SM_CHANNEL_TEST"]``, read while it parses its arguments (a KeyError before training without them)."""


def _bool(value: Any) -> int:
    return int(bool(value))


def _strategy(spec: JobSpec) -> str:
    return spec.training.activation_checkpointing


Getter = Callable[["JobSpec"], Any]

SPEC_VALUES: dict[str, Getter] = {
    # spec field -> its value as a script argument (None: not sent). Fields an explicit mapping may name.
    **{f"model.{f}": (lambda s, f=f: getattr(s.model, f)) for f in ("num_layers", "hidden_width", "num_heads")},
    "model.seq_length": lambda s: s.model.seq_length,
    "model.vocab_size": lambda s: s.model.vocab_size,
    **{
        f"training.{f}": (lambda s, f=f: getattr(s.training, f))
        for f in ("batch_size", "max_steps", "lr", "min_lr", "warmup_steps", "weight_decay", "grad_clip", "seed")
    },
    "training.activation_checkpointing": _strategy,
    "training.checkpoint_every_steps": lambda s: s.training.checkpoint_every_steps,
    "training.final_save": lambda s: _bool(s.training.final_save),
    **{
        f"smp.{f}": (lambda s, f=f: getattr(s.smp, f))
        for f in (
            "tensor_parallel_degree",
            "pipeline_parallel_degree",
            "microbatches",
            "optimize",
            "pipeline",
            "placement_strategy",
            "activation_loading_horizon",
            "sharded_data_parallel_degree",
        )
    },
    "smp.active_microbatches": lambda s: s.smp.resolved_active_microbatches,
    **{
        f"smp.{f}": (lambda s, f=f: _bool(getattr(s.smp, f)))
        for f in (
            "prescaled_batch",
            "shard_optimizer_state",
            "offload_activations",
            "fp16",
            "bf16",
            "ddp",
            "delayed_parameter_initialization",
            "skip_tracing",
            "auto_partition",
        )
    },
    "cluster.instance_count": lambda s: s.cluster.instance_count,
    "cluster.instance_type": lambda s: s.cluster.instance_type,
}

SHAPING_FIELDS = (
    "model.num_layers",
    "model.hidden_width",
    "model.num_heads",
    "model.seq_length",
    "model.vocab_size",
    "training.batch_size",
    "training.max_steps",
)
"""Spec values the layout checks and the estimate assume the script trains with: an explicit mapping that does
not pass them is a warning (ENT004)."""

AWS_SMP_GPT2: dict[str, Getter] = {
    # argument of train_gpt_simple.py -> its value from the spec
    "train_batch_size": SPEC_VALUES["training.batch_size"],  # per rdp rank with prescaled_batch, else per dp rank
    "max_steps": SPEC_VALUES["training.max_steps"],
    "seed": SPEC_VALUES["training.seed"],
    "fp16": SPEC_VALUES["smp.fp16"],
    "bf16": SPEC_VALUES["smp.bf16"],
    "sharded_data_parallel_degree": SPEC_VALUES["smp.sharded_data_parallel_degree"],
    "grad_clip": SPEC_VALUES["training.grad_clip"],
    "weight_decay": SPEC_VALUES["training.weight_decay"],
    "use_adamw": lambda s: 1,  # the spec's optimizer is AdamW (the script's default is Adam)
    "activation_checkpointing": lambda s: int(_strategy(s) != "none"),
    "activation_strategy": lambda s: "each" if _strategy(s) == "none" else _strategy(s),
    "save_final_full_model": SPEC_VALUES["training.final_save"],
    "prescaled_batch": SPEC_VALUES["smp.prescaled_batch"],
    "max_context_width": SPEC_VALUES["model.seq_length"],
    "vocab_size": SPEC_VALUES["model.vocab_size"],
    "hidden_width": SPEC_VALUES["model.hidden_width"],
    "num_layers": SPEC_VALUES["model.num_layers"],
    "num_heads": SPEC_VALUES["model.num_heads"],
    "tensor_parallel_degree": SPEC_VALUES["smp.tensor_parallel_degree"],
    "pipeline_parallel_degree": SPEC_VALUES["smp.pipeline_parallel_degree"],
    "microbatches": SPEC_VALUES["smp.microbatches"],
    "active_microbatches": SPEC_VALUES["smp.active_microbatches"],
    "optimize": SPEC_VALUES["smp.optimize"],
    "shard_optimizer_state": SPEC_VALUES["smp.shard_optimizer_state"],
    "offload_activations": SPEC_VALUES["smp.offload_activations"],
    "delayed_param": SPEC_VALUES["smp.delayed_parameter_initialization"],
    "placement_strategy": SPEC_VALUES["smp.placement_strategy"],
    "activation_loading_horizon": SPEC_VALUES["smp.activation_loading_horizon"],
    "skip_tracing": SPEC_VALUES["smp.skip_tracing"],
    "manual_partition": lambda s: int(not s.smp.auto_partition),
    # checkpoint_freq 0 divides by zero in the script (`total_steps % checkpoint_freq`); "0 = only at the end" is
    # max_steps there (the script has no checkpoint on stop: ENT005)
    "checkpoint_freq": lambda s: s.training.checkpoint_every_steps or s.training.max_steps,
    "lr": SPEC_VALUES["training.lr"],
    "min_lr": SPEC_VALUES["training.min_lr"],
    "lr_decay_style": lambda s: "cosine",  # smlaunch's schedule: linear warm-up, cosine decay to min_lr
    "lr_decay_iters": SPEC_VALUES["training.max_steps"],
    "warmup": lambda s: round(s.training.warmup_steps / s.training.max_steps, 6),  # a fraction of lr_decay_iters
}


def style(spec: JobSpec) -> str:
    """``smlaunch``, ``aws-smp-gpt2`` or ``mapping`` (an explicit one)."""
    entry = spec.entry_point
    if entry is None:
        return "smlaunch"
    return entry.arguments if isinstance(entry.arguments, str) else "mapping"


def mapped(spec: JobSpec) -> dict[str, Any]:
    """The script arguments the spec's mapping renders (without the user's ``hyperparameters``), sorted."""
    from smlaunch.request import hyperparameters

    kind = style(spec)
    if kind == "smlaunch":
        return hyperparameters(spec)
    table = AWS_SMP_GPT2 if kind == "aws-smp-gpt2" else {arg: SPEC_VALUES[f] for f, arg in _explicit(spec).items()}
    values = {arg: get(spec) for arg, get in table.items()}
    return {k: int(v) if isinstance(v, bool) else v for k, v in sorted(values.items()) if v is not None}


def arguments(spec: JobSpec) -> dict[str, Any]:
    """Everything the script receives as ``--name value``: the mapping's arguments plus ``entry_point.hyperparameters``
    verbatim (a name both set is rule ENT003), sorted by name."""
    extra = dict(spec.entry_point.hyperparameters) if spec.entry_point else {}
    values = {**mapped(spec), **extra}
    return {k: int(v) if isinstance(v, bool) else v for k, v in sorted(values.items())}


def source_field(spec: JobSpec, argument: str) -> str | None:
    """The spec field the mapping renders ``argument`` from (None when it is a constant or derived)."""
    kind = style(spec)
    if kind == "mapping":
        return next((f for f, a in _explicit(spec).items() if a == argument), None)
    if kind == "smlaunch":  # the contract's names are the fields' own
        if argument in ("activation_checkpointing", "activation_strategy"):
            return "training.activation_checkpointing"
        return next((f for f in SPEC_VALUES if f.rpartition(".")[2] == argument), None)
    getter = AWS_SMP_GPT2.get(argument)
    return next((f for f, g in SPEC_VALUES.items() if g is getter), None)


def _explicit(spec: JobSpec) -> dict[str, str]:
    return dict(spec.entry_point.arguments)  # type: ignore[union-attr, arg-type]
