"""The small interface every domain plug-in implements.

A domain is a Gymnasium environment family plus the few things PTGM needs to know
about it: how to make a task environment, how to turn observations into goal
features, how to play task-agnostically to make a dataset, and how to draw an
observation. Adding a new environment means writing one subclass of :class:`Domain`
and registering it with :func:`ptgm.domains.register_domain`.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Callable

import gymnasium as gym
import numpy as np

from ptgm.utils import PTGMError

#: A scripted player: called with the current observation, returns an action.
ScriptedPlayer = Callable[[np.ndarray], int | np.ndarray]


class Domain(ABC):
    """Everything PTGM needs to know about one environment family."""

    #: Short name used on the command line (``--domain NAME``).
    name: str = ""
    #: Task used when the user names none.
    default_task: str = ""
    #: Task of `ptgm demo` when the user names none (None: ``default_task``).
    demo_task: str | None = None
    #: Flat Stable-Baselines3 algorithm the demo compares PTGM with (``ppo`` or ``sac``).
    flat_baseline: str = "ppo"
    #: Methods `ptgm bench` compares when the user names none.
    bench_methods: tuple[str, ...] = ("ptgm", "ppo")
    #: Number of cluster goals N when the user names none.
    n_clusters: int = 64
    #: Discount of the high-level learner per high-level step (k environment steps).
    high_level_gamma: float = 0.95
    #: Scale each goal feature by its dataset standard deviation before K-means, so that no group of
    #: features (e.g. arm joints in radians against object joints) decides the clusters alone.
    standardize_goal_features: bool = False
    #: Key of the flat observation in datasets with dictionary observations (e.g. D4RL kitchen).
    dataset_observation_key: str | None = None
    #: Size of the play dataset ``ptgm generate`` records when not told (transitions).
    dataset_transitions: int = 100_000
    #: Kinds of play the scripted player can record (``ptgm generate --play``), each with its dataset size when
    #: not told; empty: one kind, given no name.
    play_styles: dict[str, int] = {}
    #: What learning curves and benchmark thresholds measure per training episode:
    #: ``"success"`` (0/1) or ``"return"`` (e.g. subtasks completed), and the level that counts as solved.
    score: str = "success"
    score_threshold: float = 0.9
    #: Longest hindsight goal horizon (env steps ahead) of the low-level policy's training goals.
    lowlevel_k_max: int = 20
    #: Whether the frozen low-level policy acts by its most likely action (rather than sampling)
    #: under the high-level learner, when the user does not say.
    deterministic_low_level: bool = False
    #: PPO's early stop of a rollout's epochs (approximate KL) for the high-level learner of the PTGM methods,
    #: when the user does not say; 0: off.
    high_level_target_kl: float = 0.0
    #: Whether the low-level policy is also given the change its goal asks for (``ptgm pretrain --goal-delta``)
    #: when the user does not say; needs :meth:`goal_observation_pairs`.
    goal_delta: bool = False
    #: Whether :meth:`compose_goal` is meant for a low-level policy given the goal delta only (others get the plain
    #: cluster goals).
    compose_for_goal_delta_only: bool = False

    @functools.cached_property
    def action_space(self) -> gym.Space:
        """The action space of the domain's environments (those of its play environment)."""
        env = self.make_env(None)
        try:
            return env.action_space
        finally:
            env.close()

    @abstractmethod
    def task_names(self) -> list[str]:
        """Names accepted by :meth:`make_env`."""

    @abstractmethod
    def make_env(self, task: str | None = None, *, seed: int | None = None, **kwargs) -> gym.Env:
        """A fresh environment for ``task``; ``task=None`` gives the reward-free play environment."""

    @abstractmethod
    def goal_features(self, observations: np.ndarray) -> np.ndarray:
        """Goal features of a batch of observations, shape ``(B, goal_dim)``, float32.

        These are what the low-level policy is conditioned on and what K-means clusters.
        """

    def goal_observation_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Goal features that are a scaled entry of the observation itself: ``(goal_index, obs_index, scale)``
        with ``goal_features(obs)[:, goal_index] == obs[:, obs_index] * scale``, or None (default: none).

        With these the low-level policy can be given ``goal[goal_index] - obs[obs_index] * scale``, the change
        the goal asks for, as an input of its own (``ptgm pretrain --goal-delta``).
        """
        return None

    @abstractmethod
    def scripted_player(self, env: gym.Env, rng: np.random.Generator) -> ScriptedPlayer:
        """A task-agnostic scripted player for ``env`` (it never sees a task reward); a domain with
        :attr:`play_styles` takes ``style=`` too."""

    def check_can_play(self) -> None:
        """Raise a clear error if the domain has no scripted player (``ptgm generate`` asks before it starts)."""

    @abstractmethod
    def render_observation(self, observation: np.ndarray) -> np.ndarray:
        """An RGB picture (H, W, 3, uint8) of one observation, for goal codebooks."""

    def compose_goal(self, goal_features: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """The goal features the low-level policy is given for cluster goals ``goal_features`` ``(B, goal_dim)``
        chosen in ``observations`` ``(B, obs_dim)``.

        Default: the cluster goals as they are. A domain whose goal states describe several independent
        objects can keep the current state of the objects a goal does not ask to change.
        """
        return goal_features

    def goal_reached(self, observation: np.ndarray, goal_observation: np.ndarray) -> bool:
        """Whether ``observation`` counts as having reached ``goal_observation``.

        Default: their goal features are within 0.05 of each other in every entry.
        """
        a, b = self.goal_features(observation[None]), self.goal_features(goal_observation[None])
        return bool(np.abs(a - b).max() <= 0.05)

    def goal_is_trivial(self, observation: np.ndarray, goal_observation: np.ndarray) -> bool:
        """Whether a goal asks for no real change from ``observation`` (skipped in goal-reaching tests)."""
        return self.goal_reached(observation, goal_observation)

    def achievement_names(self) -> list[str]:
        """What a coverage report counts (default: the task names)."""
        return self.task_names()

    def episode_achievements(self, infos: list[dict]) -> set[str]:
        """Names of the things an episode achieved, from its step infos (for coverage reports)."""
        return set()

    def task_score(self, task: str) -> str:
        """What the learning curves and thresholds of ``task`` measure: ``"success"`` or ``"return"``."""
        return self.score

    def task_threshold(self, task: str) -> float:
        """The score of ``task`` that counts as solved (for "env steps to threshold")."""
        return self.score_threshold

    def benchmark_score(self, rates: dict[str, float]) -> float | None:
        """One number summarising the fraction of training episodes that unlock each achievement (``rates``), as
        the domain's own benchmark scores it (Crafter: the Crafter score), or None when it has none."""
        return None

    def parse_start_inventory(self, items: tuple[str, ...]) -> dict:
        """The starting inventory ``items`` (``NAME=N`` strings) name, for :meth:`make_env`'s ``start_inventory``;
        a clear error for a domain without an inventory."""
        if items:
            raise PTGMError(f"The {self.name} domain has no inventory to start with; leave --start-inventory unset.")
        return {}

    def check_task(self, task: str) -> None:
        """Raise a clear error for an unknown task name."""
        if task not in self.task_names():
            raise PTGMError(
                f"Unknown {self.name} task {task!r}. Known tasks: {', '.join(sorted(self.task_names()))}."
            )
