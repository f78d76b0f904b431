"""The supervised training loop shared by the low-level policy and the goal prior.

Both are trained the same way: sample a batch of dataset rows, relabel their goals,
take an Adam step and check that the loss neither is NaN nor exploded; every ``eval_every``
steps validate and log; every ``checkpoint_every`` steps (and after the last) write a
checkpoint atomically so ``--resume`` can continue.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ptgm.progress import progress
from ptgm.utils import MetricsLogger, PTGMError, atomic_torch_save, check_finite, load_checkpoint

logger = logging.getLogger(__name__)

#: A loss this many times larger than the first one (or than 1, when that was smaller) has exploded.
EXPLODED_LOSS_FACTOR = 1e4


class _BatchLoss(torch.nn.Module):
    """``batch_loss`` as a module around ``model``: what DistributedDataParallel wraps, so that its forward
    (the whole loss) is what it synchronises the gradients of."""

    def __init__(self, model: torch.nn.Module, batch_loss: Callable[[np.random.Generator], torch.Tensor]):
        super().__init__()
        self.model = model
        self.batch_loss = batch_loss

    def forward(self, rng: np.random.Generator) -> torch.Tensor:
        return self.batch_loss(rng)


def fit(
    model: torch.nn.Module,
    batch_loss: Callable[[np.random.Generator], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    *,
    out: Path,
    steps: int,
    learning_rate: float,
    rng: np.random.Generator,
    eval_every: int,
    checkpoint_every: int,
    resume: bool,
    name: str,
    batch_size: int,
    device: torch.device | None = None,
    amp: bool = False,
) -> dict[str, float]:
    """Train ``model`` for ``steps`` Adam steps on ``batch_loss(rng)``; returns the last validation metrics
    plus ``samples_per_second`` (of the training steps, validation and checkpoints left out). Metrics go to
    ``out/metrics.csv`` and TensorBoard.

    ``model`` trains on ``device`` (``batch_loss`` and ``validate`` give it tensors there) and comes back on the
    CPU, where saving and acting expect it. ``amp``: float16 autocast with loss scaling (GPU). Under torchrun
    every process takes its own batches (``batch_size`` counts all processes' together) and
    DistributedDataParallel averages the gradients; rank 0 alone validates, logs and checkpoints.

    The last checkpoint is left in ``out``: the stage removes it once it has finished everything after training
    (:func:`ptgm.utils.mark_stage_done`), so a stage killed after its last step resumes there, not from zero.
    """
    from ptgm import distributed

    main = distributed.is_main()
    device = device or torch.device("cpu")
    if amp and device.type != "cuda":
        raise PTGMError(f"--amp (mixed precision) needs a GPU; this {name} runs on {device}. Leave --amp off.")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    ckpt_path = Path(out) / "checkpoint.pt"
    start = 0
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, f"{name} checkpoint", "Start over with --force.")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]
        start = ckpt["step"]
        if main:
            logger.info(f"[{name}] resuming from step {start}")
    runner: torch.nn.Module = _BatchLoss(model, batch_loss)
    batch_rng = rng
    if distributed.world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(runner, device_ids=[device.index] if device.type == "cuda" else None)
        # Each process its own stream of batches, the same ones again when resumed from the same step.
        batch_rng = np.random.default_rng([int(rng.integers(2**31)), start, distributed.rank()])
    metrics_log = MetricsLogger(out, resume=resume) if main else None
    # Samples/s counts the training steps only: rank 0's validation and checkpoints are paused out of it.
    t0, samples, paused = time.perf_counter(), 0, 0.0
    bar = progress(range(start, steps), desc=name, initial=start, total=steps, disable=not main)
    limit = None
    for step in bar:
        try:
            with torch.autocast(device.type, dtype=torch.float16) if amp else contextlib.nullcontext():
                loss = runner(batch_rng)
        except ValueError as exc:  # torch.distributions refuses NaN parameters before any loss exists
            if "invalid values" not in str(exc):
                raise
            raise PTGMError(f"The {name} model's outputs became NaN at step {step + 1}: training diverged. Lower "
                            "the learning rate (--learning-rate) and start over with --force.") from exc
        value = loss.item()
        limit = limit or EXPLODED_LOSS_FACTOR * max(abs(value), 1.0)
        check_finite(value, f"The {name} training loss", step + 1, limit)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        samples += batch_size
        last = step + 1 == steps
        pause = time.perf_counter()
        if main and ((step + 1) % eval_every == 0 or last):
            model.eval()
            with torch.no_grad():
                metrics = validate()
            model.train()
            metrics_log.log(step + 1, train_loss=value, **metrics,
                            samples_per_second=samples / max(pause - t0 - paused, 1e-9))
            bar.set_postfix(loss=f"{value:.3f}", **{k: f"{v:.3f}" for k, v in list(metrics.items())[-1:]})
        if main and ((step + 1) % checkpoint_every == 0 or last):
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "rng": rng.bit_generator.state, "step": step + 1}, ckpt_path)
        paused += time.perf_counter() - pause
    rate = samples / max(time.perf_counter() - t0 - paused, 1e-9)
    model.eval()
    with torch.no_grad():
        metrics = validate()
    if metrics_log is not None:
        metrics_log.close()
    distributed.barrier()  # rank 0's last checkpoint is written before any process goes on
    model.to("cpu")
    return {**metrics, "samples_per_second": rate}
