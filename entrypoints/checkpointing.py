"""Checkpoints of the native path: DCP sharded saves and loads of model + optimizer (resharding-safe), and the
opt-in full-model save (``--final_save 1``). Self-contained (never imports smlaunch); docs/entrypoint-contract.md.
"""

from __future__ import annotations

import json
import os

MARKER = "COMPLETE"
"""Written last into a checkpoint directory: a checkpoint without it is incomplete and ignored on resume."""


def _state_dict_options():
    """Flattened optimizer state (per-FQN keys, as torchtitan does): pipeline stages own different parameters,
    so nested param_groups from different stages must not be merged on save."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(flatten_optimizer_state_dict=True)


def latest_checkpoint(checkpoint_dir: str) -> tuple[int, str] | None:
    found = []
    for name in os.listdir(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []:
        path = os.path.join(checkpoint_dir, name)
        if name.startswith("step_") and name[5:].isdigit() and os.path.exists(os.path.join(path, MARKER)):
            found.append((int(name[5:]), path))
    return max(found) if found else None


class CheckpointMismatch(ValueError):
    """The newest checkpoint cannot be loaded into this run's model: a shape-changing hyperparameter changed."""


def checkpoint_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """Global shapes of the tensors in a DCP checkpoint, by flattened key (``model.wte.weight``, ...)."""
    from torch.distributed.checkpoint import FileSystemReader

    meta = FileSystemReader(path).read_metadata().state_dict_metadata
    return {k: tuple(v.size) for k, v in meta.items() if hasattr(v, "size")}


def resume_vocab_size(path: str, *, tp: int, padded: int, vocab_size: int) -> int:
    """Rows of the embedding to build when resuming from `path`: the checkpoint's own padded vocabulary.

    The padding depends on the tensor-parallel degree (a multiple of 128 * tp), so a run resumed with another tp
    keeps the checkpoint's rows and DCP reshards them; only a tp that does not divide them stops the run."""
    rows = checkpoint_shapes(path).get("model.wte.weight", (padded,))[0]
    if rows < vocab_size:
        raise CheckpointMismatch(
            f"{path}: the embedding has {rows} rows, fewer than vocab_size({vocab_size}): vocab_size changed since "
            "it was written; restore it, or start from an empty checkpoint directory"
        )
    if rows % tp:
        raise CheckpointMismatch(
            f"{path}: the embedding has {rows} rows (the vocabulary padded for the tensor_parallel_degree it was "
            f"written with), which tensor_parallel_degree={tp} does not divide; resume with a degree that divides "
            f"{rows}, or start from an empty checkpoint directory"
        )
    return rows


def check_shapes(path: str, model_sd: dict) -> None:
    """Stop before loading when a parameter's global shape differs from the checkpoint's (num_layers,
    hidden_width, seq_length ... changed): one message naming the tensor and both shapes."""
    saved = checkpoint_shapes(path)
    for name, tensor in model_sd.items():
        key, want = f"model.{name}", tuple(tensor.shape)  # a DTensor's shape is its global shape
        if key not in saved:
            raise CheckpointMismatch(f"{path} has no {key}: the model changed (num_layers?) since it was written")
        if saved[key] != want:
            raise CheckpointMismatch(
                f"{path}: {key} is {list(saved[key])} in the checkpoint but {list(want)} in this run: a model "
                "hyperparameter (hidden_width, seq_length, vocab_size, num_layers) changed since it was written; "
                "restore it, or start from an empty checkpoint directory"
            )


def save_checkpoint(pm, optimizer, step: int, checkpoint_dir: str) -> str:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    path = os.path.join(checkpoint_dir, f"step_{step}")
    model_sd, optim_sd = get_state_dict(pm.stage, optimizer, options=_state_dict_options())
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)
    dist.barrier()
    if dist.get_rank() == 0:  # the marker goes last: a checkpoint without it is ignored on resume
        with open(os.path.join(path, MARKER), "w") as f:
            layout = {"tp": pm.layout.tp, "pp": pm.layout.pp, "dp": pm.layout.dp}
            json.dump({"step": step, "loss_scale": pm.loss_scale, "layout": layout}, f)
    dist.barrier()
    return path


def load_checkpoint(pm, optimizer, path: str) -> int:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(pm.stage, optimizer, options=_state_dict_options())
    check_shapes(path, model_sd)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)  # reshards to this run's layout (tp, pp, dp, FSDP)
    set_state_dict(
        pm.stage,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
        options=_state_dict_options(),
    )
    with open(os.path.join(path, MARKER)) as f:
        meta = json.load(f)
    pm.loss_scale = meta["loss_scale"]
    return meta["step"], meta.get("layout")


# ---- native training ------------------------------------------------------------------------------------------


def save_model(pm, model_dir: str) -> None:
    """The trained weights as a DCP directory <model_dir>/model (reshardable to any layout; torch.distributed
    .checkpoint.format_utils.dcp_to_torch_save turns it into one torch.save file)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    dcp.save({"model": get_model_state_dict(pm.stage)}, checkpoint_id=os.path.join(model_dir, "model"))
