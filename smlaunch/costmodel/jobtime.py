"""Whole-job time: what a SageMaker job is billed for besides its training steps.

    provisioning     instances start (SageMaker's "Starting" secondary status)
    image_pull       the training image is pulled on every host ("Downloading")
    model_build      every process builds the model on the CPU (SMP v1 without delayed parameter
                     initialization: the whole model, in fp32), moves it to the GPU and SMP traces it
    training         max_steps x the step time of the throughput model
    checkpoints      each partial checkpoint (every checkpoint_every_steps, and the one at the end) is written
                     by every rank to the node's disk before training goes on
    final_save       with training.final_save the full 16-bit model is gathered to one rank, written to
                     /opt/ml/model, and SageMaker compresses and uploads it as model.tar.gz before the job ends

Each constant below says where its number comes from; the ones marked ASSUMPTION are not measured by us and
dominate only short jobs. Billing covers the time from "Downloading" on (SageMaker bills training time, not
provisioning), but the user waits for all of it: :attr:`JobTime.billed_s` and :attr:`JobTime.total_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVISIONING_S = 240.0
"""ASSUMPTION: 4 minutes from CreateTrainingJob to "Downloading" for GPU instances (AWS gives no figure; the
"Starting" transitions of AWS's SMP example notebooks show 2-6 minutes)."""
IMAGE_PULL_S = 150.0
"""ASSUMPTION: the PyTorch training DLCs are about 9-12 GB compressed; ~2.5 minutes at ~70 MB/s."""
CPU_INIT_PARAMS_PER_S = 42e6
"""Measured: entrypoints/model.py ``GPT(...)`` (709M parameters, fp32, default init) takes 16.8 s on one core
of this project's AMD EPYC development machine (torch 2.13 CPU, 2026-12-02): 42M parameters/s per process."""
GPU_INIT_PARAMS_PER_S = 20e9
"""Delayed parameter initialization creates each rank's shard on its GPU: HBM-bandwidth-bound (ASSUMPTION:
20G parameters/s, well under 1% of a step for every reference model)."""
HOST_TO_GPU_GBPS = 12.0
"""Copying the built model to the GPU: PCIe gen4 x16 shared by two GPUs on p4d (see throughput.PCIE_GBPS)."""
DISK_WRITE_GBPS = 1.0
"""ASSUMPTION: one node writes its ranks' partial checkpoints to its local storage at about 1 GB/s."""
MODEL_UPLOAD_GBPS = 0.1
"""ASSUMPTION: SageMaker tars and gzips /opt/ml/model on one core (~100 MB/s) before the S3 upload."""


@dataclass(frozen=True, slots=True)
class JobTime:
    """Seconds of each phase of the job (keys: see the module docstring)."""

    terms: dict[str, float]

    @property
    def total_s(self) -> float:
        """Wall time from submit to the end of the job."""
        return sum(self.terms.values())

    @property
    def billed_s(self) -> float:
        """What SageMaker bills: everything after provisioning."""
        return self.total_s - self.terms["provisioning"]


def job_time(
    *,
    step_time_s: float,
    max_steps: int,
    total_params: float,
    rank_params: float,
    ranks_per_node: int,
    rank_checkpoint_bytes: float,
    checkpoint_every_steps: int,
    delayed_init: bool,
    final_save: bool,
) -> JobTime:
    """The phases of one job. ``rank_params``: parameters one rank keeps; ``rank_checkpoint_bytes``: what it
    writes per partial checkpoint (its parameters and optimizer state)."""
    if delayed_init:
        build = rank_params / GPU_INIT_PARAMS_PER_S
    else:  # every process builds everything, then keeps and moves its part
        build = total_params / CPU_INIT_PARAMS_PER_S + rank_params * 2 / (HOST_TO_GPU_GBPS * 1e9)
    saves = (max_steps // checkpoint_every_steps if checkpoint_every_steps else 0) + 1
    if checkpoint_every_steps and max_steps % checkpoint_every_steps == 0:
        saves -= 1  # the last periodic save is the end-of-training one
    per_save = ranks_per_node * rank_checkpoint_bytes / (DISK_WRITE_GBPS * 1e9)
    final = total_params * 2 / (MODEL_UPLOAD_GBPS * 1e9) if final_save else 0.0
    return JobTime(
        {
            "provisioning": PROVISIONING_S,
            "image_pull": IMAGE_PULL_S,
            "model_build": build,
            "training": step_time_s * max_steps,
            "checkpoints": saves * per_save,
            "final_save": final,
        }
    )


SOURCES: dict[str, str] = {
    "provisioning": "assumption (costmodel/jobtime.py PROVISIONING_S)",
    "image_pull": "assumption (IMAGE_PULL_S)",
    "model_build": "measured CPU init rate (CPU_INIT_PARAMS_PER_S); delayed init: GPU_INIT_PARAMS_PER_S",
    "training": "max_steps x step time (costmodel/throughput.py)",
    "checkpoints": "rank state x ranks per node / DISK_WRITE_GBPS, per save (assumption)",
    "final_save": "16-bit model / MODEL_UPLOAD_GBPS (assumption); 0 unless training.final_save",
}
"""Where each term's number comes from (``estimate --format json`` carries it)."""
