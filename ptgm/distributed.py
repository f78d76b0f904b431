"""Where torch modules run: devices (``--device auto|cpu|cuda|cuda:N``) and pre-training under torchrun.

Launched by ``torchrun --nproc-per-node N -m ptgm.cli pretrain ...`` (or ``prior``, ``spirl``), every process
runs the same stage: rank 0 alone decides whether the stage is reused, resumed or started, and alone writes
checkpoints, metrics, the trained piece and the finished marker; each rank draws its batches from its own
disjoint part of the training rows (``rank_rows``), a ``1/N`` share of the global batch, and
``DistributedDataParallel`` averages the gradients (gloo on CPU, NCCL on GPU). Without torchrun nothing of this
is in the way: one process, rank 0 of 1.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ptgm.utils import PTGMError

#: How long a process waits for the others at a synchronisation point before giving up.
TIMEOUT = timedelta(minutes=10)


def resolve_device(name: str) -> "torch.device":  # noqa: F821 — torch is imported lazily
    """The torch device ``name`` means: ``auto`` takes the GPU when one is present (under torchrun: the GPU of the
    process's local rank), else the CPU; ``cuda`` or ``cuda:N`` where no such GPU exists is a clear error."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world_size() > 1:
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            found = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise PTGMError(f"--device {name} asks for a GPU this machine does not have ({found} CUDA device(s) "
                            "found). Use --device cpu, or --device auto to take a GPU only where there is one.")
    return torch.device(name)


def world_size() -> int:
    """How many processes share the stage (``WORLD_SIZE`` of torchrun; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the stage's files (rank 0)."""
    return rank() == 0


def setup(device: "torch.device") -> None:  # noqa: F821
    """Join the torchrun process group (once; nothing to do without torchrun)."""
    import torch.distributed as dist

    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (at the end of a command), so that no process tears it down under another."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_rows(rows: np.ndarray) -> np.ndarray:
    """This process's disjoint part of the training rows (every row when it runs alone)."""
    return rows[rank()::world_size()]


def share_of(batch_size: int) -> int:
    """This process's part of a global batch of ``batch_size`` samples."""
    if batch_size % world_size():
        raise PTGMError(f"--batch-size {batch_size} does not split evenly over {world_size()} processes; give a "
                        f"multiple of {world_size()}.")
    return batch_size // world_size()


def on_main(step: Callable[[], Any]) -> Any:
    """Run ``step`` on rank 0 alone and hand its result, or its error, to every process (so that an error there
    stops them all instead of leaving them waiting)."""
    if world_size() == 1:
        return step()
    import torch.distributed as dist

    outcome: list = [None]
    if is_main():
        try:
            outcome = [("ok", step())]
        except PTGMError as exc:
            outcome = [("error", str(exc))]
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "error":
        raise PTGMError(value)
    return value


def prepare_stage_once(directory: Path, config: Any, name: str, inputs: dict | None = None) -> dict | None:
    """:func:`ptgm.utils.prepare_stage` on rank 0; every process gets its answer (the finished summary or None)."""
    from ptgm.utils import prepare_stage

    return on_main(lambda: prepare_stage(directory, config, config.force, config.resume, name, inputs))
