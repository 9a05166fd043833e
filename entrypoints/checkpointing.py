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
            json.dump({"step": step, "loss_scale": pm.loss_scale}, f)
    dist.barrier()
    return path


def load_checkpoint(pm, optimizer, path: str) -> int:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(pm.stage, optimizer, options=_state_dict_options())
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
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
    return meta["step"]


# ---- native training ------------------------------------------------------------------------------------------


def save_model(pm, model_dir: str) -> None:
    """The trained weights as a DCP directory <model_dir>/model (reshardable to any layout; torch.distributed
    .checkpoint.format_utils.dcp_to_torch_save turns it into one torch.save file)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    dcp.save({"model": get_model_state_dict(pm.stage)}, checkpoint_id=os.path.join(model_dir, "model"))
