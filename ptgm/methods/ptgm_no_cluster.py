"""The no-clustering ablation: the high-level action is a point in goal-feature space, not a cluster goal."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from ptgm.hrl.ppo import PTGMPPO
from ptgm.hrl.pretrained import Pretrained
from ptgm.hrl.wrapper import ContinuousGoalEnv, ScaledObservation
from ptgm.methods.base import Method, ppo_kwargs
from ptgm.methods.ptgm import GoalMethod
from ptgm.settings import TrainConfig


class PTGMNoCluster(GoalMethod):
    name = "ptgm-no-cluster"
    description = "PPO over continuous goals in the box the cluster goals span; no prior"
    hidden = Method.hidden  # 256 256: there is no prior to copy

    def wrap_env(self, env: gym.Env, config: TrainConfig, pieces: Pretrained) -> gym.Env:
        goals = pieces.codebook.goal_features
        return ScaledObservation(ContinuousGoalEnv(env, pieces.policy, goals.min(0), goals.max(0),
                                                   **self.goal_env_kwargs(config, pieces)))

    def goal_of(self, high_action, pieces: Pretrained) -> tuple[np.ndarray, int]:
        goals = pieces.codebook.goal_features
        low, high = goals.min(0), goals.max(0)
        unit = (np.clip(np.asarray(high_action, np.float32), -1.0, 1.0) + 1.0) / 2.0
        return (low + unit * (high - low))[None], -1

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces: Pretrained,
                   tensorboard_log: str | None = None) -> PTGMPPO:
        return PTGMPPO("MlpPolicy", vec_env, **ppo_kwargs(config, self.hidden(config, pieces), tensorboard_log))

    def model_class(self) -> type[PTGMPPO]:
        return PTGMPPO


METHOD = PTGMNoCluster()
