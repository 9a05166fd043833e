"""A single-process, recording fake of `smdistributed.modelparallel.torch` (SMP v1), for tests off SageMaker.

Put `tests/fakes` on PYTHONPATH and `import smdistributed.modelparallel.torch as smp` works on any machine.
Every public call is appended to `CALLS` as `(name, args, kwargs)`; when `SMP_FAKE_CALLS_FILE` is set, each call is
also appended to that file as a JSON line (`{"name", "args", "kwargs"}` with tensors/modules described), so a test
can check the call order of an entry point run in a subprocess.

Faithful (follows SMP v1 docs and the AWS GPT-2 example; see /work/shared/reference/smp-v1.md §6):
- `init(config)`: merges the dict with `SM_HP_MP_PARAMETERS` (the launch-time JSON wins; `partitions` is the alias of
  `pipeline_parallel_degree`), checks enums, `fp16`+`bf16`, `tp > 1 => ddp`, and that tp * pp (and the sharded-DP
  degree) fit the world size. Here the world is one process, so any degree > 1 raises, as SMP does when a job asks
  for more ranks than it has. Rank/size functions raise before `init`.
- Sizes follow SMP's arithmetic (dp = world/pp, rdp = world/(pp*tp), mp = pp*tp); all are 1 and all ranks 0 here.
- `DistributedModel`: one per process; wraps the module (`get_module()`), moves it to the current CUDA device when
  there is one, casts it to fp16 under `fp16: True` and returns fp32 outputs (FP16_Module), `backward(loss)` only
  inside `smp.step`, scaling by the loss scale and by 1/microbatches (`average_grads_across_microbatches`).
  "Partitioning" happens at the first `smp.step` call: post-partition hooks run and a pending
  `resume_from_checkpoint` is loaded then, as in SMP.
- `DistributedOptimizer`: must come after `DistributedModel`; under `fp16` it is an FP16_Optimizer with fp32 master
  weights, dynamic loss scaling (`dynamic_loss_args` as in the AWS example), `overflow`, skipped steps and
  `clip_master_grads` (see fp16.py). Without fp16 it passes through to the wrapped optimizer.
- `@smp.step`: splits every tensor argument (except `non_split_inputs`) into `microbatches` along dim 0 (or
  `input_split_axes`), raising when the batch is not divisible; runs the function once per microbatch and returns
  `StepOutput`s (`reduce_mean`, `reduce_sum`, `concat`, `stack`, `outputs`) for tensor outputs.
- `set_activation_checkpointing`: validates the module (inside the DistributedModel) and the strategy name
  (`each` | `contiguous` | `group_<n>`, only for nn.Sequential), and really checkpoints with torch.utils.checkpoint.
- `model_creation(dtype=...)` creates parameters in `dtype` (fp16/bf16 via the default dtype).
- `save_checkpoint`/`resume_from_checkpoint`: real files via torch.save in SMP's layout (`<tag>_partial/` with
  model/optimizer/user_content files, `newest`, full `<tag>` + `user_content_<tag>`), `num_kept_partial_checkpoints`.

Not faithful:
- No partitioning, tracing, pipelining, tensor parallelism or communication: one process runs the whole model, the
  microbatches run one after another, and collectives are identities (`allgather` returns `[obj]`).
- `get_*_process_group()` return None (there is no torch.distributed group), after checking `ddp` as SMP does.
- `tensor_parallelism=True` and delayed parameter initialization are recorded, not acted on.
- bf16 is a plain bf16 model with the wrapped optimizer (SMP 1.11+ internals for bf16 are not modeled).
- Checkpoint file names and contents are not byte-compatible with SMP's.
- Config keys are not checked against SMP's full list (unknown keys are accepted and recorded).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import json
import os
import re
import shutil
import types

import torch
from torch.utils.checkpoint import checkpoint as _torch_checkpoint

from .fp16 import FP16Optimizer

CALLS: list[tuple[str, tuple, dict]] = []

DEFAULTS = {
    "pipeline_parallel_degree": 1,
    "tensor_parallel_degree": 1,
    "microbatches": 1,
    "pipeline": "interleaved",
    "optimize": "memory",
    "placement_strategy": "cluster",
    "ddp": False,
    "fp16": False,
    "bf16": False,
    "prescaled_batch": False,
    "shard_optimizer_state": False,
    "offload_activations": False,
    "activation_loading_horizon": 4,
    "delayed_parameter_initialization": False,
    "sharded_data_parallel_degree": 1,
    "auto_partition": True,
    "default_partition": 0,
}
WORLD_SIZE = 1  # this fake is one process

_state: dict = {}


class SMPValidationError(ValueError):
    """Raised where SMP rejects a configuration or a call."""


class CommGroup(enum.Enum):
    WORLD = 0
    MP_GROUP = 1
    DP_GROUP = 2
    TP_GROUP = 3
    PP_GROUP = 4
    RDP_GROUP = 5


def reset() -> None:
    """Forget init, model, optimizer and recorded calls (for in-process tests)."""
    _state.clear()
    CALLS.clear()
    TP_REGISTRY.clear()


def _describe(value):
    """A JSON-friendly description of a recorded argument."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return type(value).__name__


def _record(name: str, *args, **kwargs) -> None:
    CALLS.append((name, args, kwargs))
    path = os.environ.get("SMP_FAKE_CALLS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"name": name, "args": _describe(args), "kwargs": _describe(kwargs)}) + "\n")


def _config() -> dict:
    if "config" not in _state:
        raise RuntimeError("smp.init() must be called before using smdistributed.modelparallel.torch")
    return _state["config"]


# ---------------------------------------------------------------------------------------------------- init, ranks


def _normalize(config: dict) -> dict:
    config = dict(config)
    if "partitions" in config:
        config["pipeline_parallel_degree"] = config.pop("partitions")
    return config


def _validate(cfg: dict) -> None:
    """The checks SMP makes at init that a one-process run can hit."""
    enums = {"pipeline": {"interleaved", "simple", "_only_forward"}, "optimize": {"memory", "speed"}}
    for key, allowed in enums.items():
        if cfg[key] not in allowed:
            raise SMPValidationError(f"{key} must be one of {sorted(allowed)}, got {cfg[key]!r}")
    if cfg["placement_strategy"] not in {"cluster", "spread"} and sorted(str(cfg["placement_strategy"])) != list("DPT"):
        raise SMPValidationError(f"invalid placement_strategy {cfg['placement_strategy']!r}")
    for key in ("microbatches", "pipeline_parallel_degree", "tensor_parallel_degree", "sharded_data_parallel_degree"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise SMPValidationError(f"{key} must be a positive integer, got {cfg[key]!r}")
    if cfg["fp16"] and cfg["bf16"]:
        raise SMPValidationError("fp16 and bf16 cannot both be enabled")
    if cfg["tensor_parallel_degree"] > 1 and not cfg["ddp"]:
        raise SMPValidationError("tensor_parallel_degree > 1 requires ddp: True")
    mp = cfg["pipeline_parallel_degree"] * cfg["tensor_parallel_degree"]
    if WORLD_SIZE % mp:
        raise SMPValidationError(
            f"pipeline_parallel_degree({cfg['pipeline_parallel_degree']}) * tensor_parallel_degree"
            f"({cfg['tensor_parallel_degree']}) = {mp} does not divide the world size ({WORLD_SIZE} process)"
        )
    if (WORLD_SIZE // cfg["pipeline_parallel_degree"]) % cfg["sharded_data_parallel_degree"]:
        raise SMPValidationError(
            f"sharded_data_parallel_degree({cfg['sharded_data_parallel_degree']}) must divide the data-parallel "
            f"degree ({WORLD_SIZE // cfg['pipeline_parallel_degree']})"
        )


def init(config: dict | None = None) -> None:
    """Initialize from `config`, overridden by `$SM_HP_MP_PARAMETERS` (the launch-time config wins)."""
    _record("init", config)
    env = os.environ.get("SM_HP_MP_PARAMETERS")
    cfg = {**DEFAULTS, **_normalize(config or {}), **_normalize(json.loads(env) if env else {})}
    cfg.setdefault("active_microbatches", cfg["pipeline_parallel_degree"] + 2)
    _validate(cfg)
    _state.clear()
    _state.update(config=cfg, model=None, optimizer=None, partitioned=False, pending_resume=None, in_step=False)


def is_initialized() -> bool:
    return "config" in _state


def is_tracing() -> bool:
    return False


def _query(name: str) -> dict:
    _record(name)
    return _config()


def _rank_function(name: str):
    """Every rank is 0 in a one-process world."""

    def query() -> int:
        _query(name)
        return 0

    query.__name__ = query.__qualname__ = name
    return query


rank, local_rank, pp_rank, tp_rank, mp_rank, dp_rank, rdp_rank = (
    _rank_function(n) for n in ("rank", "local_rank", "pp_rank", "tp_rank", "mp_rank", "dp_rank", "rdp_rank")
)


def size() -> int:
    _query("size")
    return WORLD_SIZE


def local_size() -> int:
    _query("local_size")
    return WORLD_SIZE


def pp_size() -> int:
    return _query("pp_size")["pipeline_parallel_degree"]


def tp_size() -> int:
    return _query("tp_size")["tensor_parallel_degree"]


def mp_size() -> int:
    """mp = pp * tp."""
    cfg = _query("mp_size")
    return cfg["pipeline_parallel_degree"] * cfg["tensor_parallel_degree"]


def dp_size() -> int:
    """dp = world / pp: TP ranks count as data parallel."""
    return WORLD_SIZE // _query("dp_size")["pipeline_parallel_degree"]


def rdp_size() -> int:
    """rdp ("reduced" dp) = world / (pp * tp)."""
    cfg = _query("rdp_size")
    return WORLD_SIZE // (cfg["pipeline_parallel_degree"] * cfg["tensor_parallel_degree"])


# ------------------------------------------------------------------------------------------ communication (no-ops)


def barrier(group: CommGroup = CommGroup.WORLD) -> None:
    _record("barrier", group)
    _config()


def dp_barrier() -> None:
    _record("dp_barrier")
    _config()


def mp_barrier() -> None:
    _record("mp_barrier")
    _config()


def broadcast(obj, group: CommGroup = CommGroup.WORLD):
    _record("broadcast", group=group)
    _config()
    return obj


def allgather(obj, group: CommGroup = CommGroup.WORLD) -> list:
    _record("allgather", group=group)
    _config()
    return [obj]


def _process_group(name: str):
    _record(name)
    if not _config()["ddp"]:
        raise RuntimeError(f"smp.{name}() requires ddp: True in the smp config")


def get_world_process_group():
    return _process_group("get_world_process_group")


def get_mp_process_group():
    return _process_group("get_mp_process_group")


def get_dp_process_group():
    return _process_group("get_dp_process_group")


def get_tp_process_group():
    return _process_group("get_tp_process_group")


def get_pp_process_group():
    return _process_group("get_pp_process_group")


def get_rdp_process_group():
    return _process_group("get_rdp_process_group")


def get_tp_group() -> list[int]:
    return [rank()]


def get_mp_group() -> list[int]:
    return [rank()]


def get_dp_group() -> list[int]:
    return [rank()]


# ------------------------------------------------------------------------------------------------ model creation


@contextlib.contextmanager
def _default_dtype(dtype):
    previous = torch.get_default_dtype()
    if dtype is not None and dtype.is_floating_point:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def model_creation(tensor_parallelism: bool = False, dtype=None, **tp_config):
    """Create parameters in `dtype`; TP and delayed init are recorded only."""
    _record("model_creation", tensor_parallelism=tensor_parallelism, dtype=dtype, **tp_config)
    _state["delayed_param_init"] = bool(_config()["delayed_parameter_initialization"])
    with _default_dtype(dtype):
        yield


@contextlib.contextmanager
def tensor_parallelism(enabled: bool = True, **tp_config):
    _record("tensor_parallelism", enabled=enabled, **tp_config)
    _config()
    yield


@contextlib.contextmanager
def delay_param_initialization(enabled: bool = True):
    _record("delay_param_initialization", enabled=enabled)
    _config()
    yield


TP_REGISTRY: dict[type, tuple] = {}
"""Module class -> (distributed class, init_hook, forward_hook, return_hook), as tp_register_with_module got them."""


def tp_register_with_module(module_cls, dist_module, init_hook=None, forward_hook=None, return_hook=None) -> None:
    """Record a registration; like SMP, require the init hook's signature to match ``module_cls.__init__``."""
    _record("tp_register_with_module", module_cls.__name__, dist_module.__name__)
    if init_hook is not None:
        wanted = list(inspect.signature(module_cls.__init__).parameters.values())[1:]
        got = list(inspect.signature(init_hook).parameters.values())
        if [(p.name, p.kind, p.default) for p in wanted] != [(p.name, p.kind, p.default) for p in got]:
            raise SMPValidationError(f"init_hook signature {got} does not match {module_cls.__name__}.__init__")
    TP_REGISTRY[module_cls] = (dist_module, init_hook, forward_hook, return_hook)


class _DistributedTransformerLayerStub:
    """Stands in for ``smp.nn.DistributedTransformerLayer`` (the fake never builds distributed modules)."""


nn = types.SimpleNamespace(DistributedTransformerLayer=_DistributedTransformerLayerStub)


# ------------------------------------------------------------------------------------------------ DistributedModel


def _to_fp32(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_fp32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_fp32(v) for k, v in value.items()}
    return value


class DistributedModel(torch.nn.Module):
    """Wraps the whole model (one process holds every "partition")."""

    def __init__(self, module: torch.nn.Module, trace_device: str = "gpu", **kwargs):
        _record("DistributedModel", module, trace_device=trace_device, **kwargs)
        cfg = _config()
        if _state["model"] is not None:
            raise SMPValidationError("smp.DistributedModel can wrap only one model per process")
        super().__init__()
        if cfg["fp16"]:
            module = module.half()
        if torch.cuda.is_available():
            module = module.to(torch.device("cuda", torch.cuda.current_device()))
        self.module = module
        self.average_grads_across_microbatches = kwargs.get("average_grads_across_microbatches", True)
        self._post_partition_hooks = []
        _state["model"] = self

    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        return _to_fp32(out) if _config()["fp16"] else out

    def get_module(self) -> torch.nn.Module:
        return self.module

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of one microbatch's loss, scaled like SMP (loss scale, 1/microbatches)."""
        _record("DistributedModel.backward", loss)
        if not _state["in_step"]:
            raise RuntimeError("DistributedModel.backward must be called inside an smp.step-decorated function")
        scale = 1.0
        if self.average_grads_across_microbatches:
            scale /= _config()["microbatches"]
        optimizer = _state["optimizer"]
        if optimizer is not None and isinstance(optimizer.inner, FP16Optimizer):
            scale *= optimizer.inner.loss_scale
        (loss * scale).backward()

    def local_state_dict(self) -> dict:
        return self.module.state_dict()

    def state_dict(self, *args, **kwargs) -> dict:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True):
        return self.module.load_state_dict(state_dict, strict=strict)

    def register_post_partition_hook(self, hook) -> None:
        _record("DistributedModel.register_post_partition_hook", hook)
        self._post_partition_hooks.append(hook)


class DistributedOptimizer:
    """The optimizer wrapper: FP16_Optimizer-like under `fp16`, else a pass-through."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        static_loss_scale=1.0,
        dynamic_loss_scale=False,
        dynamic_loss_args=None,
        **kwargs,
    ):
        _record(
            "DistributedOptimizer",
            optimizer,
            static_loss_scale=static_loss_scale,
            dynamic_loss_scale=dynamic_loss_scale,
            dynamic_loss_args=dynamic_loss_args,
            **kwargs,
        )
        _config()
        if _state["model"] is None:
            raise SMPValidationError("create smp.DistributedModel before smp.DistributedOptimizer")
        if _config()["fp16"]:
            optimizer = FP16Optimizer(
                optimizer,
                static_loss_scale=static_loss_scale,
                dynamic_loss_scale=dynamic_loss_scale,
                dynamic_loss_args=dynamic_loss_args,
            )
        self.inner = optimizer
        _state["optimizer"] = self

    def __getattr__(self, name):  # overflow, clip_master_grads, loss_scale exist only under fp16, as in SMP
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def param_groups(self):
        return self.inner.param_groups

    def step(self, *args, **kwargs):
        _record("DistributedOptimizer.step")
        return self.inner.step(*args, **kwargs)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def local_state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


# ---------------------------------------------------------------------------------------------------- smp.step


class StepOutput:
    """Per-microbatch outputs of an smp.step function."""

    def __init__(self, outputs: list):
        self.outputs = outputs

    def reduce_mean(self) -> torch.Tensor:
        return torch.stack(self.outputs).mean(dim=0)

    def reduce_sum(self) -> torch.Tensor:
        return torch.stack(self.outputs).sum(dim=0)

    def concat(self) -> torch.Tensor:
        return torch.cat(self.outputs, dim=0)

    def stack(self) -> torch.Tensor:
        return torch.stack(self.outputs)


def _wrap_outputs(per_mb: list):
    """StepOutput for tensors; the same structure of StepOutputs for tuples, lists and dicts."""
    first = per_mb[0]
    if isinstance(first, torch.Tensor):
        return StepOutput(per_mb)
    if isinstance(first, (tuple, list)):
        return type(first)(_wrap_outputs([o[i] for o in per_mb]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _wrap_outputs([o[k] for o in per_mb]) for k in first}
    return per_mb


def _detach(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value


def _split(name: str, value, *, num: int, axis: int):
    if not isinstance(value, torch.Tensor):
        return [value] * num
    if value.shape[axis] % num:
        raise SMPValidationError(
            f"smp.step input {name!r}: size {value.shape[axis]} along axis {axis} is not divisible by "
            f"microbatches({num}); use drop_last=True and a batch size divisible by microbatches"
        )
    return list(torch.split(value, value.shape[axis] // num, dim=axis))


def _partition_once() -> None:
    """First smp.step: the model is 'partitioned'; hooks run and a pending resume is loaded."""
    if _state["partitioned"]:
        return
    _state["partitioned"] = True
    model, optimizer = _state["model"], _state["optimizer"]
    for hook in model._post_partition_hooks:
        hook(model, optimizer)
    pending, _state["pending_resume"] = _state["pending_resume"], None
    if pending is not None:
        _load_partial(*pending)


def step(func=None, *, non_split_inputs=None, input_split_axes=None, detach_outputs=True):
    """Decorator: run `func` once per microbatch of its tensor arguments; tensor outputs become StepOutputs."""
    if func is None:
        return functools.partial(
            step, non_split_inputs=non_split_inputs, input_split_axes=input_split_axes, detach_outputs=detach_outputs
        )
    signature = inspect.signature(func)

    @functools.wraps(func)
    def run(*args, **kwargs):
        cfg = _config()
        if _state["model"] is None:
            raise RuntimeError("create smp.DistributedModel before calling an smp.step function")
        num = cfg["microbatches"]
        bound = signature.bind(*args, **kwargs)
        _record("step", func.__name__, microbatches=num, inputs=dict(bound.arguments))
        _partition_once()
        skip, axes = set(non_split_inputs or ()), dict(input_split_axes or {})
        pieces = {
            k: ([v] * num if k in skip else _split(k, v, num=num, axis=axes.get(k, 0)))
            for k, v in bound.arguments.items()
        }
        outputs = []
        _state["in_step"] = True
        try:
            for mb in range(num):
                out = func(**{k: v[mb] for k, v in pieces.items()})
                outputs.append(_detach(out) if detach_outputs else out)
        finally:
            _state["in_step"] = False
        return _wrap_outputs(outputs)

    return run


# -------------------------------------------------------------------------------------- activation checkpointing

_STRATEGY = re.compile(r"^(each|contiguous|group_[1-9][0-9]*)$")


def _checkpointed(fn, preserve_rng_state: bool):
    def forward(*args, **kwargs):
        if torch.is_grad_enabled():
            return _torch_checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=preserve_rng_state, **kwargs)
        return fn(*args, **kwargs)

    return forward


def _run_groups(groups):
    def run(x):
        for group in groups:
            x = group(x)
        return x

    return run


def set_activation_checkpointing(module, preserve_rng_state=True, pack_args_as_tuple=False, strategy="each"):
    """Checkpoint `module` (a submodule of the DistributedModel); for nn.Sequential, by `strategy`."""
    _record(
        "set_activation_checkpointing",
        module,
        preserve_rng_state=preserve_rng_state,
        pack_args_as_tuple=pack_args_as_tuple,
        strategy=strategy,
    )
    _config()
    model = _state["model"]
    if model is None or not any(m is module for m in model.get_module().modules()):
        raise SMPValidationError("set_activation_checkpointing needs a submodule of the smp.DistributedModel")
    if not _STRATEGY.match(str(strategy)):
        raise SMPValidationError(f"invalid activation checkpointing strategy {strategy!r}: each, contiguous, group_<n>")
    if not isinstance(module, torch.nn.Sequential):
        if strategy != "each":
            raise SMPValidationError("a checkpointing strategy other than 'each' needs an nn.Sequential")
        module.forward = _checkpointed(module.forward, preserve_rng_state)
        return
    children = list(module)
    if strategy == "each":
        for child in children:
            child.forward = _checkpointed(child.forward, preserve_rng_state)
        return
    size = len(children) if strategy == "contiguous" else int(strategy.split("_")[1])  # one partition here
    groups = [
        _checkpointed(torch.nn.Sequential(*children[i : i + size]).forward, preserve_rng_state)
        for i in range(0, len(children), size)
    ]
    module.forward = _run_groups(groups)


# ---------------------------------------------------------------------------------------------------- checkpoints


def _rank_suffix() -> str:
    """pp_tp_rdp ranks of this process (all 0 here; not recorded as user calls)."""
    return "0_0_0"


def save_checkpoint(
    path,
    tag,
    partial=True,
    model=None,
    optimizer=None,
    user_content=None,
    translate_if_full=True,
    num_kept_partial_checkpoints=None,
):
    """Write `<path>/<tag>_partial/` (partial) or `<path>/<tag>` (full), plus `<path>/newest`."""
    _record(
        "save_checkpoint",
        path,
        tag,
        partial=partial,
        model=model,
        optimizer=optimizer,
        user_content=user_content,
        num_kept_partial_checkpoints=num_kept_partial_checkpoints,
    )
    _config()
    os.makedirs(path, exist_ok=True)
    if not partial:
        torch.save(model.state_dict() if model is not None else {}, os.path.join(path, tag))
        torch.save(user_content, os.path.join(path, f"user_content_{tag}"))
        return
    folder = os.path.join(path, f"{tag}_partial")
    os.makedirs(folder, exist_ok=True)
    if model is not None:
        torch.save(model.local_state_dict(), os.path.join(folder, f"model_{_rank_suffix()}.pt"))
    if optimizer is not None:
        torch.save(optimizer.local_state_dict(), os.path.join(folder, f"optimizer_{_rank_suffix()}.pt"))
    torch.save(user_content, os.path.join(folder, "user_content.pt"))
    with open(os.path.join(path, "newest"), "w") as f:
        f.write(tag)
    if num_kept_partial_checkpoints:
        _prune(path, keep=num_kept_partial_checkpoints)


def _prune(path: str, *, keep: int) -> None:
    folders = [os.path.join(path, d) for d in os.listdir(path) if d.endswith("_partial")]
    folders.sort(key=os.path.getmtime)
    for old in folders[:-keep]:
        shutil.rmtree(old)


def _load_partial(folder: str, strict: bool, load_optimizer: bool) -> None:
    model, optimizer = _state["model"], _state["optimizer"]
    model.load_state_dict(torch.load(os.path.join(folder, f"model_{_rank_suffix()}.pt")), strict=strict)
    opt_file = os.path.join(folder, f"optimizer_{_rank_suffix()}.pt")
    if load_optimizer and optimizer is not None and os.path.exists(opt_file):
        optimizer.load_state_dict(torch.load(opt_file))


def resume_from_checkpoint(
    path,
    tag=None,
    partial=True,
    strict=True,
    load_optimizer=True,
    load_sharded_optimizer_state=True,
    translate_function=None,
):
    """Return the saved user_content now; load model/optimizer at partition time (the first smp.step)."""
    _record("resume_from_checkpoint", path, tag=tag, partial=partial, strict=strict, load_optimizer=load_optimizer)
    _config()
    if tag is None:
        newest = os.path.join(path, "newest")
        if not os.path.exists(newest):
            raise FileNotFoundError(f"no checkpoint to resume: {newest} does not exist")
        with open(newest) as f:
            tag = f.read().strip()
    if not partial:
        _state["model"].load_state_dict(torch.load(os.path.join(path, tag)), strict=strict)
        return torch.load(os.path.join(path, f"user_content_{tag}"))
    folder = os.path.join(path, f"{tag}_partial")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist")
    if _state["partitioned"]:
        _load_partial(folder, strict, load_optimizer)
    else:
        _state["pending_resume"] = (folder, strict, load_optimizer)
    return torch.load(os.path.join(folder, "user_content.pt"))
