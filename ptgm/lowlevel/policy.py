"""The goal-conditioned low-level policy P(a | s, g)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from ptgm.nets import SavableModule, ScaledInput, mlp, observation_scale


class GoalConditionedPolicy(SavableModule):
    """An MLP over ``[scaled observation, goal features]``.

    Discrete action spaces get a categorical head; Box action spaces a diagonal
    Gaussian with a state-independent log standard deviation.
    """

    kind, what, made_by = "lowlevel", "low-level policy", "ptgm pretrain"

    def __init__(self, obs_scale: np.ndarray, goal_dim: int, action_space: gym.Space,
                 hidden: tuple[int, ...] = (512, 512, 256)):
        super().__init__()
        self.init_kwargs = {"obs_scale": np.asarray(obs_scale), "goal_dim": goal_dim,
                            "action_space": action_space, "hidden": tuple(hidden)}
        self.obs_dim = len(obs_scale)
        self.goal_dim = goal_dim
        self.scale = ScaledInput(obs_scale)
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.net = mlp(self.obs_dim + goal_dim, tuple(hidden), out)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((out,), -1.0))

    @classmethod
    def for_env(cls, env: gym.Env, goal_dim: int, hidden: tuple[int, ...] = (512, 512, 256)) -> "GoalConditionedPolicy":
        return cls(observation_scale(env.observation_space), goal_dim, env.action_space, hidden)

    def distribution(self, obs: torch.Tensor, goal: torch.Tensor) -> Distribution:
        out = self.net(torch.cat([self.scale(obs), goal.float()], dim=-1))
        if self.discrete:
            return Categorical(logits=out)
        return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)

    def log_prob(self, obs: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs, goal).log_prob(actions)

    def sample(self, obs: torch.Tensor, goal: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions for a batch, without building a distribution object (this runs every environment step)."""
        out = self.net(torch.cat([self.scale(obs), goal.float()], dim=-1))
        if self.discrete:
            if deterministic:
                return out.argmax(-1)
            # Gumbel-max trick: an exact sample from softmax(out).
            return (out - torch.log(-torch.log(torch.rand_like(out)))).argmax(-1)
        if deterministic:
            return out
        return out + self.log_std.exp() * torch.randn_like(out)

    @torch.inference_mode()
    def act(self, obs: np.ndarray, goal: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions for a batch (or a single) observation and goal, as numpy."""
        single = obs.ndim == 1
        obs_t = torch.as_tensor(np.atleast_2d(obs))
        goal_t = torch.as_tensor(np.atleast_2d(goal))
        action = self.sample(obs_t, goal_t, deterministic).numpy()
        return action[0] if single else action
