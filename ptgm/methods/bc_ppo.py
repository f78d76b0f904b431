"""BC + PPO: a flat PPO whose actor starts as a behaviour-cloned policy of the play dataset and is fine-tuned
as VPT fine-tunes (:mod:`ptgm.baselines.bc`): cloning to convergence, a critic warm-up, a KL term to the clone."""

from __future__ import annotations

import logging

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from ptgm.baselines.bc import BCFineTunePPO
from ptgm.methods.base import ppo_kwargs
from ptgm.methods.ppo import FlatPPO
from ptgm.nets import observation_scale
from ptgm.settings import TrainConfig
from ptgm.utils import PTGMError

logger = logging.getLogger(__name__)

#: Fraction of the play episodes held out to tell when behaviour cloning has converged.
BC_VAL_FRACTION = 0.05


class BCPPO(FlatPPO):
    name = "bc-ppo"
    description = "flat PPO from a behaviour-cloned policy, fine-tuned as VPT does (critic warm-up, KL to the clone)"
    pieces = "data"
    tuning_alternatives = (("learning_rate", 1e-4), ("bc_kl_coef", 0.01))

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces=None,
                   tensorboard_log: str | None = None) -> BCFineTunePPO:
        model = BCFineTunePPO("MlpPolicy", vec_env, kl_coef=config.bc_kl_coef,
                              critic_warmup_steps=int(config.bc_critic_warmup * config.env_steps),
                              **ppo_kwargs(config, self.hidden(config, pieces), tensorboard_log))
        clone_from_play_data(model, config)
        model.freeze_reference()
        return model

    def model_class(self) -> type[BCFineTunePPO]:
        return BCFineTunePPO


def clone_from_play_data(model, config: TrainConfig) -> dict:
    """Start PPO's actor as a behaviour-cloned policy of the run's play dataset (scaled as the policy sees it),
    cloned until the loss on held-out episodes stops improving (``config.bc_steps`` steps at most)."""
    from ptgm.baselines.bc import behaviour_clone
    from ptgm.data.generate import load_run_dataset
    from ptgm.domains import domain_of

    domain = domain_of(config)
    data = load_run_dataset(config.run_dir, config.dataset, domain.dataset_observation_key)
    if data.observations.shape[1:] != model.observation_space.shape:
        raise PTGMError(f"The play dataset's observations have shape {data.observations.shape[1:]} but the "
                        f"{config.task} environment's have {model.observation_space.shape}; it was recorded for "
                        "another environment.")
    train_eps, val_eps = data.split_episodes(BC_VAL_FRACTION, config.seed)
    rows, val_rows = data.action_rows(train_eps), data.action_rows(val_eps)
    # The policy sees ScaledObservation's view of the task env: raw observations over the space's bound.
    scale = observation_scale(domain.make_env(config.task).observation_space)
    result = behaviour_clone(model.policy, data.observations[rows].astype(np.float32) / scale, data.actions[rows],
                             config.bc_steps, seed=config.seed,
                             val_observations=data.observations[val_rows].astype(np.float32) / scale,
                             val_actions=data.actions[val_rows])
    logger.info(f"[train] behaviour cloning on {len(rows)} play transitions: {result['bc_steps']} steps, held-out "
                f"loss {result['bc_val_loss']:.3f}, accuracy {result['bc_accuracy']:.3f}")
    return result


METHOD = BCPPO()
