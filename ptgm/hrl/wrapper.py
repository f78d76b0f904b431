"""The high-level action space: pick one of N cluster goals, the frozen low-level policy runs k steps."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.nets import observation_scale
from ptgm.settings import DEFAULT_K

#: ``f(goals (B, goal_dim), observations (B, obs_dim)) -> goals (B, goal_dim)``.
ComposeGoal = Callable[[np.ndarray, np.ndarray], np.ndarray]


def low_level_action(policy: GoalConditionedPolicy, observation: np.ndarray, goal: torch.Tensor,
                     deterministic: bool):
    """The frozen low-level policy's environment action for one raw observation and ``(1, goal_dim)`` goal."""
    with torch.inference_mode():
        low = policy.sample(torch.as_tensor(observation).reshape(1, -1), goal, deterministic)[0]
    return int(low) if policy.discrete else low.numpy()


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
        compose_goal: ``f(goals (B, goal_dim), observations (B, obs_dim)) -> goals`` applied to the chosen
            goal in the state where it is chosen (a domain's :meth:`~ptgm.domains.base.Domain.compose_goal`);
            ``None`` gives the low-level policy the goal as it is.
    """

    def __init__(self, env: gym.Env, policy: GoalConditionedPolicy, goal_features: np.ndarray, k: int = DEFAULT_K,
                 deterministic: bool = False, compose_goal: ComposeGoal | None = None):
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
        self.compose_goal = compose_goal
        self.action_space = gym.spaces.Discrete(len(goal_features))
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs):
        self._obs, info = self.env.reset(**kwargs)
        return self._obs, info

    def _goal(self, action) -> torch.Tensor:
        """The ``(1, goal_dim)`` goal features a high-level action stands for."""
        return self.goals[int(action)][None]

    def step(self, action):
        goal = self._goal(action)
        if self.compose_goal is not None:
            goal = torch.as_tensor(self.compose_goal(goal.numpy(), np.asarray(self._obs)[None]))
        total_reward = 0.0
        for steps in range(1, self.k + 1):
            low_action = low_level_action(self.policy, self._obs, goal, self.deterministic)
            self._obs, reward, terminated, truncated, info = self.env.step(low_action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        info = dict(info, env_steps=steps, goal=int(action) if np.ndim(action) == 0 else -1)
        return self._obs, total_reward, terminated, truncated, info


class ContinuousGoalEnv(GoalSelectionEnv):
    """The no-clustering ablation: the high-level action IS a goal, a point in goal-feature space.

    Actions live in ``[-1, 1]^goal_dim`` and map linearly onto the box ``[low, high]`` of
    goal features (the range the cluster goals span, so the same scale as PTGM's goals);
    the frozen low-level policy then runs k steps towards that goal. There is no discrete
    goal prior to regularise towards (``info["goal"]`` is -1).

    Args:
        env, policy, k, deterministic, compose_goal: as for :class:`GoalSelectionEnv`.
        low, high: ``(goal_dim,)`` bounds of the goal box.
    """

    def __init__(self, env: gym.Env, policy: GoalConditionedPolicy, low: np.ndarray, high: np.ndarray, k: int = DEFAULT_K,
                 deterministic: bool = False, compose_goal: ComposeGoal | None = None):
        super().__init__(env, policy, np.stack([low, high]), k, deterministic, compose_goal)
        self.low, self.high = self.goals[0], self.goals[1]
        self.action_space = gym.spaces.Box(-1.0, 1.0, (policy.goal_dim,), np.float32)

    def _goal(self, action) -> torch.Tensor:
        unit = (torch.as_tensor(np.clip(action, -1.0, 1.0), dtype=torch.float32) + 1.0) / 2.0
        return (self.low + unit * (self.high - self.low))[None]


class GoalSelectionVecEnv(DummyVecEnv):
    """Many :class:`GoalSelectionEnv` in one process, with one batched low-level forward pass per env step.

    The frozen low-level policy runs every environment step, so its per-call overhead
    bounds throughput; batching the ``n`` environments amortises it. Semantics match
    ``ScaledObservation(GoalSelectionEnv(env))`` in a ``DummyVecEnv``: each environment
    runs the chosen goal for ``k`` steps or until its episode ends (then it is reset
    and waits for the others), rewards are summed, observations are scaled by
    :func:`observation_scale`, and infos carry ``env_steps`` and ``goal``.

    Args:
        env_fns: thunks making the task environments (raw observations).
        policy, goal_features, k, deterministic, compose_goal: as for :class:`GoalSelectionEnv`.
    """

    def __init__(self, env_fns, policy: GoalConditionedPolicy, goal_features: np.ndarray, k: int = DEFAULT_K,
                 deterministic: bool = False, compose_goal: ComposeGoal | None = None):
        super().__init__(env_fns)
        # Validates shapes and k exactly as the single-environment wrapper does.
        check = GoalSelectionEnv(self.envs[0], policy, goal_features, k, deterministic)
        self.policy, self.goals, self.k, self.deterministic = check.policy, check.goals, k, deterministic
        self.compose_goal = compose_goal
        self.scale = observation_scale(self.envs[0].observation_space)
        self.observation_space = ScaledObservation(self.envs[0]).observation_space
        self.action_space = check.action_space
        self._raw = np.zeros((self.num_envs,) + self.envs[0].observation_space.shape,
                             self.envs[0].observation_space.dtype)

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float32) / self.scale

    def reset(self):
        for i, env in enumerate(self.envs):
            self._raw[i], self.reset_infos[i] = env.reset(seed=self._seeds[i], **self._options[i])
        self._reset_seeds()
        self._reset_options()
        return self._scaled(self._raw)

    def step_wait(self):
        n = self.num_envs
        chosen = np.asarray(self.actions, np.int64).reshape(n)
        goals = self.goals[torch.as_tensor(chosen)]
        if self.compose_goal is not None:
            goals = torch.as_tensor(self.compose_goal(goals.numpy(), self._raw))
        # Plain Python lists in the per-step loop: numpy scalar updates cost more than the bookkeeping itself.
        rewards, steps, done = [0.0] * n, [0] * n, [False] * n
        infos: list[dict] = [{} for _ in range(n)]
        active = list(range(n))
        for _ in range(self.k):
            with torch.inference_mode():
                low = self.policy.sample(torch.as_tensor(self._raw[active]), goals[active], self.deterministic)
            low = low.tolist() if self.policy.discrete else low.numpy()
            for j, i in enumerate(active):
                obs, reward, terminated, truncated, info = self.envs[i].step(low[j])
                rewards[i] += float(reward)
                steps[i] += 1
                infos[i] = info
                if terminated or truncated:
                    done[i] = True
                    # SB3 conventions: bootstrap from the terminal observation when only truncated.
                    infos[i] = dict(info, terminal_observation=self._scaled(obs))
                    infos[i]["TimeLimit.truncated"] = truncated and not terminated
                    obs, self.reset_infos[i] = self.envs[i].reset()
                self._raw[i] = obs
            active = [i for i in active if not done[i]]
            if not active:
                break
        infos = [dict(info, env_steps=steps[i], goal=int(chosen[i])) for i, info in enumerate(infos)]
        return self._scaled(self._raw), np.asarray(rewards, np.float32), np.asarray(done), infos


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
