"""The high-level action space: pick one of N cluster goals, the frozen low-level policy runs k steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.nets import observation_scale


class GoalSelectionEnv(gym.Wrapper):
    """``Discrete(N)`` actions over cluster goals.

    One high-level step conditions the frozen low-level policy on the chosen goal's
    features and runs it for ``k`` environment steps, stopping early when the episode
    ends. The reward is the task reward summed over those steps; ``info["env_steps"]``
    says how many environment steps were taken and ``info["goal"]`` which goal.

    Args:
        env: the task environment (raw observations, as the low-level policy was trained on).
        policy: the pre-trained low-level policy (kept frozen).
        goal_features: ``(N, goal_dim)`` features of the cluster goals.
        k: environment steps per high-level step.
        deterministic: take the low-level policy's most likely action instead of sampling.
    """

    def __init__(self, env: gym.Env, policy: GoalConditionedPolicy, goal_features: np.ndarray, k: int = 10,
                 deterministic: bool = False):
        super().__init__(env)
        if goal_features.shape[1] != policy.goal_dim:
            raise ValueError(f"goal features have {goal_features.shape[1]} entries but the low-level policy "
                             f"expects {policy.goal_dim}; the codebook and policy come from different featurisers.")
        if env.observation_space.shape[0] != policy.obs_dim:
            raise ValueError(f"the environment's observations have {env.observation_space.shape[0]} entries but the "
                             f"low-level policy expects {policy.obs_dim}; it was trained on another environment.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.policy = policy.eval().requires_grad_(False)
        self.goals = torch.as_tensor(goal_features, dtype=torch.float32)
        self.k = k
        self.deterministic = deterministic
        self.action_space = gym.spaces.Discrete(len(goal_features))
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs):
        self._obs, info = self.env.reset(**kwargs)
        return self._obs, info

    def step(self, action):
        goal = self.goals[int(action)][None]
        total_reward = 0.0
        for steps in range(1, self.k + 1):
            with torch.inference_mode():
                dist = self.policy.distribution(torch.as_tensor(self._obs)[None], goal)
                if self.deterministic:
                    low = dist.probs.argmax(-1) if self.policy.discrete else dist.mean
                else:
                    low = dist.sample()
            low_action = int(low[0]) if self.policy.discrete else low[0].numpy()
            self._obs, reward, terminated, truncated, info = self.env.step(low_action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        info = dict(info, env_steps=steps, goal=int(action))
        return self._obs, total_reward, terminated, truncated, info


class ScaledObservation(gym.ObservationWrapper):
    """Float observations divided by the space's ``high`` (what SB3's MLP policies should see)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.scale = observation_scale(env.observation_space)
        shape = env.observation_space.shape
        self.observation_space = gym.spaces.Box(
            low=(np.asarray(env.observation_space.low, np.float32).reshape(-1) / self.scale).reshape(shape),
            high=(np.asarray(env.observation_space.high, np.float32).reshape(-1) / self.scale).reshape(shape),
            dtype=np.float32,
        )

    def observation(self, observation):
        return np.asarray(observation, np.float32) / self.scale
