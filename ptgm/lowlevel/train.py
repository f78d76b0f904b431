"""`ptgm pretrain`: behaviour cloning of P(a | s, g) with hindsight goal relabeling."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ptgm import distributed
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import run_dataset_path
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.data.shards import Rows, stage_data
from ptgm.domains import domain_of
from ptgm.lowlevel.evaluate import goal_reaching_test
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.settings import PretrainConfig
from ptgm.training import fit
from ptgm.utils import (
    dataset_inputs,
    mark_stage_done,
    seed_everything,
)

logger = logging.getLogger(__name__)


def pretrain(config: PretrainConfig) -> dict:
    """Train the low-level policy in ``RUN_DIR/lowlevel`` (reused when finished; under torchrun, split over the
    processes, see :mod:`ptgm.distributed`)."""
    out = Path(config.run_dir) / "lowlevel"
    device = distributed.resolve_device(config.device)
    distributed.setup(device)
    previous = distributed.prepare_stage_once(out, config, "pretrain", dataset_inputs(config))
    if previous is not None:
        return previous
    seed_everything(config.seed)
    batch = distributed.share_of(config.batch_size)
    domain = domain_of(config)
    env = domain.make_env(None)

    def prepare(data: TrajectoryData) -> Rows:
        data.check_observation_size(env.observation_space.shape[0], f"the {domain.name} environment")
        return Rows(data, {"observations": torch.from_numpy(data.observations).to(device),
                           "goals": torch.from_numpy(domain.goal_features(data.observations)).to(device),
                           "actions": torch.from_numpy(data.actions).to(device)})

    source = run_dataset_path(config.run_dir, config.dataset or None)
    data = stage_data(source, domain.dataset_observation_key, config.memory_rows, config.val_fraction, config.seed,
                      prepare, batch)
    rng = np.random.default_rng(config.seed)
    # One fixed validation batch, relabeled once, so validation numbers are comparable over time.
    val, held_out = data.val.tensors, data.val
    val_pick = rng.choice(held_out.rows, size=min(len(held_out.rows), 20_000), replace=False)
    val_goal = hindsight_goal_rows(val_pick, held_out.data.episode_end, rng, config.k_min, config.k_max)

    policy = GoalConditionedPolicy.for_env(env, val["goals"].shape[1], config.hidden, config.action_head,
                                           config.mixture_components,
                                           domain.goal_observation_pairs() if config.goal_delta else None)
    metric_name = "val_action_accuracy" if policy.discrete else "val_action_mse"

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        part = data.sampler.current(rng)
        rows = rng.choice(part.rows, size=batch)
        goal_rows = hindsight_goal_rows(rows, part.data.episode_end, rng, config.k_min, config.k_max)
        t = part.tensors
        return -policy.log_prob(t["observations"][rows], t["goals"][goal_rows], t["actions"][rows]).mean()

    def validate() -> dict[str, float]:
        dist = policy.distribution(val["observations"][val_pick], val["goals"][val_goal])
        # The action the policy takes when deterministic (for a mixture: its most likely component's mean).
        best = policy.sample(val["observations"][val_pick], val["goals"][val_goal], deterministic=True)
        if policy.discrete:
            metric = (best == val["actions"][val_pick]).float().mean().item()
        else:
            metric = ((best - val["actions"][val_pick]) ** 2).mean().item()
        return {"val_loss": -dist.log_prob(val["actions"][val_pick]).mean().item(), metric_name: metric}

    metrics = fit(policy, batch_loss, validate, out=out, steps=config.steps, learning_rate=config.learning_rate,
                  rng=rng, eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
                  resume=config.resume, name="pretrain", batch_size=config.batch_size, device=device, amp=config.amp)
    if not distributed.is_main():  # rank 0 tests and writes the policy; the others wait for it, then leave together
        distributed.barrier()
        return metrics
    policy.save(out / "policy.pt", fingerprint=data.fingerprint, domain=domain.name,
                k_min=config.k_min, k_max=config.k_max)

    reach = goal_reaching_test(domain, data.held_out_episodes[0], policy, n_trials=config.goal_trials,
                               horizon=config.goal_horizon, episodes=data.held_out_episodes[1], seed=config.seed)
    summary = {**metrics, "train_transitions": data.train_transitions, "val_transitions": int(len(held_out.rows)),
               "goal_reaching": reach}
    mark_stage_done(out, config, summary)
    distributed.barrier()
    logger.info(f"[pretrain] held-out {metric_name} {metrics[metric_name]:.3f}; goal reached {reach['success_rate']:.2f} "
          f"with the true goal vs {reach['control_success_rate']:.2f} with a shuffled goal "
          f"({reach['trials']} trials)")
    return summary
