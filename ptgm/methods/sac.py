"""Flat SAC (Stable-Baselines3) from scratch on the task environment's continuous actions."""

from __future__ import annotations

from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import VecEnv

from ptgm.methods.base import Method, sac_kwargs
from ptgm.settings import TrainConfig


class FlatSAC(Method):
    name = "sac"
    description = "flat SAC from scratch (continuous actions)"
    continuous_actions = True
    tuning_alternatives = (("learning_rate", 1e-4), ("gamma", 0.95))  # its entropy weight is tuned to a target

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces=None, tensorboard_log: str | None = None) -> SAC:
        self.check_action_space(vec_env.action_space, config)
        # One gradient step per environment step (SB3's -1: as many as transitions were collected, i.e. one per
        # environment each step), as SAC's paper and SPiRL's and ptgm-sac's learners take; SB3's default of 1
        # would give n_envs times fewer.
        return SAC("MlpPolicy", vec_env, gradient_steps=-1,
                   **sac_kwargs(config, self.hidden(config, pieces), tensorboard_log))

    def model_class(self) -> type[SAC]:
        return SAC


METHOD = FlatSAC()
