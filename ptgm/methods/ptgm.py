"""PTGM: PPO over the codebook's N cluster goals, the reward regularised by α·KL(prior ‖ policy), the policy
initialised from the goal prior (the paper's Minecraft learner)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from ptgm.hrl.ppo import PTGMPPO
from ptgm.hrl.pretrained import Pretrained
from ptgm.hrl.sharded import ShardedVecEnv
from ptgm.hrl.wrapper import GoalSelectionEnv, GoalSelectionVecEnv, ScaledObservation, low_level_action
from ptgm.methods.base import Method, Plan, TaskEnvFn, ppo_kwargs, task_env_fn
from ptgm.settings import TrainConfig
from ptgm.utils import available_cores


class GoalMethod(Method):
    """What every method over the pre-trained goals shares: the pieces and the goal-selecting wrappers."""

    pieces = "goals"
    high_level = True
    ptgm_variant = True

    def load_pieces(self, config: TrainConfig, check_dataset: bool = True) -> Pretrained:
        return Pretrained.load(config.run_dir)

    def goal_env_kwargs(self, config: TrainConfig, pieces: Pretrained) -> dict:
        """How the goal-selecting wrappers run the low-level policy."""
        return dict(k=config.k, deterministic=config.deterministic_low_level,
                    compose_goal=pieces.compose_goal if config.compose_goals else None)

    def save_pieces(self, pieces: Pretrained) -> bytes:
        return pieces.to_bytes()

    def load_saved_pieces(self, data: bytes) -> Pretrained:
        return Pretrained.from_bytes(data)

    def plan(self, high_action, observation: np.ndarray, config: TrainConfig, pieces: Pretrained) -> Plan:
        """k low-level steps towards the goal ``high_action`` stands for (composed in ``observation``)."""
        goal, index = self.goal_of(high_action, pieces)
        if config.compose_goals:
            goal = pieces.compose_goal(goal, observation.reshape(1, -1))
        goal = torch.as_tensor(goal, dtype=torch.float32)

        caption = pieces.describe_goal(index) if index >= 0 else "continuous goal"
        return Plan(lambda obs: low_level_action(pieces.policy, obs, goal, config.deterministic_low_level), config.k,
                    {"goal": index, "caption": caption})

    def goal_of(self, high_action, pieces: Pretrained) -> tuple[np.ndarray, int]:
        """The ``(1, goal_dim)`` goal features of a high-level action, and its cluster index (-1: none)."""
        index = int(np.asarray(high_action).reshape(()))
        return pieces.codebook.goal_features[index][None], index


class PTGMMethod(GoalMethod):
    name = "ptgm"
    description = "PPO over the N cluster goals, KL(prior ‖ policy) in the reward, initialised from the prior"
    picks_cluster_goals = True
    #: Whether the goal prior regularises the policy (α·KL in the reward) ...
    kl_to_prior = True
    #: ... and whether the policy starts as a copy of it (the ablations turn one or both off).
    init_from_prior = True
    tuning_alternatives = (("learning_rate", 1e-4), ("kl_coef", 0.1))

    def hidden(self, config: TrainConfig, pieces: Pretrained) -> list[int]:
        """The prior's widths unless configured: the actor starts as a copy of the prior."""
        return list(config.hidden or pieces.prior.init_kwargs["hidden"])

    def wrap_env(self, env: gym.Env, config: TrainConfig, pieces: Pretrained) -> gym.Env:
        return ScaledObservation(GoalSelectionEnv(env, pieces.policy, pieces.codebook.goal_features,
                                                  **self.goal_env_kwargs(config, pieces)))

    def make_vec_env(self, config: TrainConfig, pieces: Any, task_envs: list[TaskEnvFn] | None = None) -> VecEnv:
        task_envs = task_envs or [task_env_fn(config, rank) for rank in range(config.n_envs)]
        if config.subproc:
            # One worker process per core, each with a batched low-level forward pass over its share.
            vec_env = ShardedVecEnv(_GoalSelectionShard(self.name, config, task_envs), len(task_envs),
                                    workers=available_cores())
        else:
            # One process, one batched low-level forward pass for all environments per env step.
            vec_env = GoalSelectionVecEnv(task_envs, pieces.policy, pieces.codebook.goal_features,
                                          **self.goal_env_kwargs(config, pieces))
        vec_env.seed(config.seed * 1000)
        return vec_env

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces: Pretrained,
                   tensorboard_log: str | None = None) -> PTGMPPO:
        uses_prior = self.kl_to_prior or self.init_from_prior
        return PTGMPPO("MlpPolicy", vec_env, prior=pieces.prior if uses_prior else None,
                       kl_coef=config.kl_coef if self.kl_to_prior else 0.0,
                       init_from_prior=self.init_from_prior and config.init_from_prior,
                       **ppo_kwargs(config, self.hidden(config, pieces), tensorboard_log))

    def model_class(self) -> type[PTGMPPO]:
        return PTGMPPO


class _GoalSelectionShard:
    """A picklable ``(first, count) -> GoalSelectionVecEnv`` for :class:`~ptgm.hrl.sharded.ShardedVecEnv`: the
    worker process loads the pieces itself."""

    def __init__(self, method: str, config: TrainConfig, task_envs: list[TaskEnvFn]):
        self.method, self.config, self.task_envs = method, config, task_envs

    def __call__(self, first: int, count: int) -> GoalSelectionVecEnv:
        from ptgm.methods import get_method

        method = get_method(self.method)
        pieces = method.load_pieces(self.config, check_dataset=False)
        return GoalSelectionVecEnv(self.task_envs[first:first + count], pieces.policy, pieces.codebook.goal_features,
                                   **method.goal_env_kwargs(self.config, pieces))


METHOD = PTGMMethod()
