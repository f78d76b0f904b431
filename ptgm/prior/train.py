"""`ptgm prior`: train π_p(goal | s) with cross-entropy on the cluster of each state's hindsight goal."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ptgm import distributed
from ptgm.clustering.codebook import Codebook
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import run_dataset_path
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.data.shards import Rows, stage_data
from ptgm.domains import domain_of, get_domain
from ptgm.nets import observation_scale
from ptgm.prior.model import GoalPrior
from ptgm.settings import PriorConfig, check_horizon
from ptgm.training import fit
from ptgm.utils import (
    dataset_inputs,
    mark_stage_done,
    seed_everything,
    stage_done,
    stage_inputs,
)

logger = logging.getLogger(__name__)


def prior_labels(data: TrajectoryData, row_clusters: np.ndarray, rows: np.ndarray, rng: np.random.Generator,
                 k_min: int, k_max: int) -> np.ndarray:
    """The cluster of each row's hindsight goal: the target the prior learns to predict."""
    return row_clusters[hindsight_goal_rows(rows, data.episode_end, rng, k_min, k_max)]


def lowlevel_horizon(run_dir: str | Path, domain: str) -> tuple[int, int]:
    """The hindsight goal horizons ``(k_min, k_max)`` the run's low-level policy learned (its finished stage's
    settings), or the domain's when the run has none."""
    done = stage_done(Path(run_dir) / "lowlevel")
    if done is not None and "k_max" in done["config"]:
        return int(done["config"].get("k_min", 1)), int(done["config"]["k_max"])
    return 1, get_domain(domain).lowlevel_k_max


def train_prior(config: PriorConfig) -> dict:
    if config.k_min is None or config.k_max is None:  # the prior predicts goals as far ahead as the policy reaches
        k_min, k_max = lowlevel_horizon(config.run_dir, config.domain)
        config = dataclasses.replace(config, k_min=config.k_min or k_min, k_max=config.k_max or k_max)
    check_horizon(config.k_min, config.k_max)
    out = Path(config.run_dir) / "prior"
    device = distributed.resolve_device(config.device)
    distributed.setup(device)
    inputs = {**dataset_inputs(config), **stage_inputs(config.run_dir, "codebook")}
    previous = distributed.prepare_stage_once(out, config, "prior", inputs)
    if previous is not None:
        return previous
    seed_everything(config.seed)
    batch = distributed.share_of(config.batch_size)
    domain = domain_of(config)
    env = domain.make_env(None)
    codebook = Codebook.load(Path(config.run_dir) / "codebook" / "codebook.npz")

    def prepare(data: TrajectoryData) -> Rows:
        data.check_observation_size(env.observation_space.shape[0], f"the {domain.name} environment")
        return Rows(data, {"observations": torch.from_numpy(data.observations).to(device),
                           "clusters": codebook.assign(domain.goal_features(data.observations))})

    source = run_dataset_path(config.run_dir, config.dataset or None)
    data = stage_data(source, domain.dataset_observation_key, config.memory_rows, config.val_fraction, config.seed,
                      prepare, batch)
    if data.fingerprint:  # streamed, rank 0 alone computes it
        codebook.check_matches(data.fingerprint, "the prior's training data")
    rng = np.random.default_rng(config.seed)
    held_out = data.val
    val_pick = rng.choice(held_out.rows, size=min(len(held_out.rows), 20_000), replace=False)
    val_labels = torch.from_numpy(prior_labels(held_out.data, held_out.tensors["clusters"], val_pick, rng,
                                               config.k_min, config.k_max)).to(device)
    val_observations = held_out.tensors["observations"][val_pick]

    prior = GoalPrior(observation_scale(env.observation_space), codebook.n_goals, config.hidden)

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        part = data.sampler.current(rng)
        rows = rng.choice(part.rows, size=batch)
        labels = prior_labels(part.data, part.tensors["clusters"], rows, rng, config.k_min, config.k_max)
        return F.cross_entropy(prior(part.tensors["observations"][rows]), torch.from_numpy(labels).to(device))

    def validate() -> dict[str, float]:
        logits = prior(val_observations)
        top5 = logits.topk(min(5, codebook.n_goals), -1).indices
        return {"val_loss": F.cross_entropy(logits, val_labels).item(),
                "val_top5_accuracy": (top5 == val_labels[:, None]).any(-1).float().mean().item(),
                "val_accuracy": (logits.argmax(-1) == val_labels).float().mean().item()}

    metrics = fit(prior, batch_loss, validate, out=out, steps=config.steps, learning_rate=config.learning_rate,
                  rng=rng, eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
                  resume=config.resume, name="prior", batch_size=config.batch_size, device=device, amp=config.amp)
    if not distributed.is_main():  # rank 0 writes the prior; the others wait for it, then leave together
        distributed.barrier()
        return metrics
    # How much better than always guessing the most frequent cluster.
    majority = (val_labels == torch.bincount(val_labels).argmax()).float().mean().item()
    prior.save(out / "prior.pt", fingerprint=data.fingerprint, domain=domain.name,
               codebook_fingerprint=codebook.fingerprint)
    summary = {**metrics, "majority_class_accuracy": majority, "n_goals": codebook.n_goals,
               "codebook_fingerprint": codebook.fingerprint}
    mark_stage_done(out, config, summary)
    distributed.barrier()
    logger.info(f"[prior] held-out accuracy {metrics['val_accuracy']:.3f} (top-5 {metrics['val_top5_accuracy']:.3f}; "
          f"majority-class baseline {majority:.3f})")
    return summary
