"""Flat PPO (Stable-Baselines3) from scratch on the task environment's own actions."""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from ptgm.methods.base import Method, ppo_kwargs
from ptgm.settings import TrainConfig


class FlatPPO(Method):
    name = "ppo"
    description = "flat PPO from scratch"

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces=None, tensorboard_log: str | None = None) -> PPO:
        return PPO("MlpPolicy", vec_env, **ppo_kwargs(config, self.hidden(config, pieces), tensorboard_log))

    def model_class(self) -> type[PPO]:
        return PPO


METHOD = FlatPPO()
