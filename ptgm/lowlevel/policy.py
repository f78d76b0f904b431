"""The goal-conditioned low-level policy P(a | s, g)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ptgm.nets import SavableModule, ScaledInput, mlp, observation_scale
from ptgm.settings import ACTION_HEADS, check_action_head  # noqa: F401  (re-exported)

#: Bounds on a mixture component's log standard deviation (keeps the likelihood finite).
MIXTURE_LOG_STD_RANGE = (-5.0, 1.0)
#: Gain on the goal-delta input: one Crafter item is 1/9 of a goal feature, and the gain brings a change of one
#: item near the scale of the other inputs.
GOAL_DELTA_GAIN = 3.0


class GoalConditionedPolicy(SavableModule):
    """An MLP over ``[scaled observation, goal features]`` (and, with ``goal_delta``, the change the goal asks for).

    Discrete action spaces get a categorical head. Box action spaces get either a diagonal
    Gaussian with a state-independent log standard deviation (``gaussian``), or a mixture of
    ``components`` diagonal Gaussians whose weights, means and standard deviations all depend on
    the input (``mixture``): play data can hold several different actions for one (state, goal),
    and a single Gaussian fits their average, which may be none of them.

    ``goal_delta`` is a domain's :meth:`~ptgm.domains.base.Domain.goal_observation_pairs`, ``(goal_index,
    obs_index, scale)``: the policy is then also given ``goal[goal_index] - obs[obs_index] * scale``, what the goal
    asks to change (e.g. the Crafter item to craft), which it would otherwise have to work out from the raw
    observation.
    """

    kind, what, made_by = "lowlevel", "low-level policy", "ptgm pretrain"

    def __init__(self, obs_scale: np.ndarray, goal_dim: int, action_space: gym.Space,
                 hidden: tuple[int, ...] = (512, 512, 256), action_head: str = "gaussian", components: int = 5,
                 goal_delta: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        super().__init__()
        self.init_kwargs = {"obs_scale": np.asarray(obs_scale), "goal_dim": goal_dim,
                            "action_space": action_space, "hidden": tuple(hidden),
                            "action_head": action_head, "components": components}
        if goal_delta is not None:  # absent from older checkpoints, which load unchanged
            goal_delta = tuple(np.asarray(part) for part in goal_delta)
            self.init_kwargs["goal_delta"] = goal_delta
        self.obs_dim = len(obs_scale)
        self.goal_dim = goal_dim
        self.scale = ScaledInput(obs_scale)
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        check_action_head(action_head, components)
        self.mixture = action_head == "mixture" and not self.discrete
        self.components = components if self.mixture else 1
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.action_dim = out
        self.goal_delta = goal_delta is not None
        delta_dim = 0
        if self.goal_delta:
            goal_index, obs_index, scale = goal_delta
            if not len(goal_index) == len(obs_index) == len(scale):
                raise ValueError("goal_delta needs goal_index, obs_index and scale of one length")
            delta_dim = len(goal_index)
            self.register_buffer("delta_goal_index", torch.as_tensor(goal_index, dtype=torch.long), persistent=False)
            self.register_buffer("delta_obs_index", torch.as_tensor(obs_index, dtype=torch.long), persistent=False)
            self.register_buffer("delta_scale", torch.as_tensor(scale, dtype=torch.float32), persistent=False)
        # Mixture outputs per component: a weight logit, a mean and a log std per action dimension.
        self.net = mlp(self.obs_dim + goal_dim + delta_dim, tuple(hidden), components * (1 + 2 * out) if self.mixture else out)
        if not self.discrete and not self.mixture:
            self.log_std = nn.Parameter(torch.full((out,), -1.0))
        if self.mixture:
            # Spread the components' initial means over the action range: identical components are a
            # saddle point of the likelihood that gradient descent leaves slowly.
            layout = torch.arange(components * 2 * out).reshape(components, 2 * out)
            with torch.no_grad():
                self.net[-1].bias[components + layout[:, :out].flatten()] = torch.empty(components * out).uniform_(-0.5, 0.5)

    @classmethod
    def for_env(cls, env: gym.Env, goal_dim: int, hidden: tuple[int, ...] = (512, 512, 256),
                action_head: str = "gaussian", components: int = 5,
                goal_delta: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> "GoalConditionedPolicy":
        return cls(observation_scale(env.observation_space), goal_dim, env.action_space, hidden, action_head,
                   components, goal_delta)

    def _inputs(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        goal = goal.float()
        parts = [self.scale(obs), goal]
        if self.goal_delta:
            wanted = goal[..., self.delta_goal_index] - obs[..., self.delta_obs_index].float() * self.delta_scale
            parts.append(GOAL_DELTA_GAIN * wanted)
        return torch.cat(parts, dim=-1)

    def _mixture_params(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Component logits ``(B, C)``, means and standard deviations ``(B, C, action_dim)``."""
        logits, rest = out[..., :self.components], out[..., self.components:]
        mean, log_std = rest.reshape(*out.shape[:-1], self.components, 2 * self.action_dim).chunk(2, dim=-1)
        return logits, mean, log_std.clamp(*MIXTURE_LOG_STD_RANGE).exp()

    def distribution(self, obs: torch.Tensor, goal: torch.Tensor) -> Distribution:
        out = self.net(self._inputs(obs, goal))
        if self.discrete:
            return Categorical(logits=out)
        if self.mixture:
            logits, mean, std = self._mixture_params(out)
            return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(mean, std), 1))
        return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)

    def log_prob(self, obs: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs, goal).log_prob(actions)

    def sample(self, obs: torch.Tensor, goal: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions for a batch, without building a distribution object (this runs every environment step)."""
        out = self.net(self._inputs(obs, goal))
        if self.discrete:
            return _pick(out, deterministic)
        if self.mixture:
            # Deterministic: the mean of the most likely component (a mode of the action, not the
            # average of the modes).
            logits, mean, std = self._mixture_params(out)
            chosen = _pick(logits, deterministic)[..., None, None].expand(*mean.shape[:-2], 1, self.action_dim)
            mean, std = mean.gather(-2, chosen).squeeze(-2), std.gather(-2, chosen).squeeze(-2)
            return mean if deterministic else mean + std * torch.randn_like(mean)
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


def _pick(logits: torch.Tensor, deterministic: bool) -> torch.Tensor:
    """The most likely index, or an exact sample from softmax(logits) by the Gumbel-max trick."""
    if deterministic:
        return logits.argmax(-1)
    return (logits - torch.log(-torch.log(torch.rand_like(logits)))).argmax(-1)
