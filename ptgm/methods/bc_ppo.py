"""BC + PPO: a flat PPO whose actor starts as a behaviour-cloned policy of the play dataset."""

from __future__ import annotations

import logging

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from ptgm.methods.ppo import FlatPPO
from ptgm.nets import observation_scale
from ptgm.settings import TrainConfig
from ptgm.utils import PTGMError

logger = logging.getLogger(__name__)


class BCPPO(FlatPPO):
    name = "bc-ppo"
    description = "flat PPO initialised by behaviour cloning on the play data"
    pieces = "data"

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces=None, tensorboard_log: str | None = None) -> PPO:
        model = super().make_model(config, vec_env, pieces, tensorboard_log)
        clone_from_play_data(model, config)
        return model


def clone_from_play_data(model: PPO, config: TrainConfig) -> dict:
    """Start PPO's actor as a behaviour-cloned policy of the run's play dataset (scaled as the policy sees it)."""
    from ptgm.baselines.bc import behaviour_clone
    from ptgm.data.generate import load_run_dataset
    from ptgm.domains import domain_of

    domain = domain_of(config)
    data = load_run_dataset(config.run_dir, config.dataset, domain.dataset_observation_key)
    if data.observations.shape[1:] != model.observation_space.shape:
        raise PTGMError(f"The play dataset's observations have shape {data.observations.shape[1:]} but the "
                        f"{config.task} environment's have {model.observation_space.shape}; it was recorded for "
                        "another environment.")
    rows = data.action_rows()
    # The policy sees ScaledObservation's view of the task env: raw observations over the space's bound.
    scale = observation_scale(domain.make_env(config.task).observation_space)
    result = behaviour_clone(model.policy, data.observations[rows].astype(np.float32) / scale, data.actions[rows],
                             config.bc_steps, seed=config.seed)
    logger.info(f"[train] behaviour cloning on {len(rows)} play transitions: loss {result['bc_loss']:.3f}, "
                f"accuracy {result['bc_accuracy']:.3f}")
    return result


METHOD = BCPPO()
