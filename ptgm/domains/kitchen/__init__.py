"""Franka Kitchen: the paper's robotics domain (``FrankaKitchen-v1``, gymnasium-robotics + MuJoCo)."""

from __future__ import annotations

import contextlib
import functools
import io
import os

# MuJoCo's offscreen rendering needs a GL backend chosen before mujoco is imported; EGL
# works headless on these machines (osmesa is not installed).
os.environ.setdefault("MUJOCO_GL", "egl")

# gymnasium-robotics 1.4.2 prints a notice about the Adroit hand environments to stderr when
# imported; it does not concern Kitchen and would repeat in every data-generation worker.
with contextlib.redirect_stderr(io.StringIO()):
    import gymnasium_robotics  # noqa: E402, F401

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from ptgm.domains.base import Domain  # noqa: E402
from ptgm.domains.kitchen.env import (  # noqa: E402
    N_OBJECT_QPOS,
    OBJECT_QPOS_START,
    OBS_DIM,
    PLAY_STYLES,
    SUBTASKS,
    TASK_PRESETS,
    KitchenEnv,
    completed_subtasks,
    parse_task,
)

#: Goal features: robot joint positions (9) and object joint positions (21).
GOAL_DIM = 9 + N_OBJECT_QPOS


def goal_features(observations: np.ndarray) -> np.ndarray:
    """Robot + object joint positions of a batch of Kitchen observations, float32 ``(B, 30)``."""
    observations = np.asarray(observations)
    if observations.ndim != 2 or observations.shape[1] != OBS_DIM:
        raise ValueError(f"Kitchen observations must have shape (batch, {OBS_DIM}); got {observations.shape}. "
                         "Was this data made for another environment or version?")
    return np.concatenate(
        [observations[:, :9], observations[:, OBJECT_QPOS_START:OBJECT_QPOS_START + N_OBJECT_QPOS]], axis=1,
    ).astype(np.float32)


#: An object joint counts as untouched in a goal within this distance of where it starts (rad or m).
REST_TOLERANCE = 0.05


@functools.cache
def _object_groups() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Goal-feature indices of each object (a subtask's joints, or a lone joint), and the starting features.

    Goal feature ``i`` is ``qpos[i]`` (9 robot joints, then the 21 object joints).
    """
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_INDICES

    groups = [np.asarray(idx) for idx in OBS_ELEMENT_INDICES.values()]
    grouped = np.concatenate(groups)
    groups += [np.array([i]) for i in range(9, GOAL_DIM) if i not in grouped]
    start = np.asarray(KitchenEnv().kitchen.robot_env.init_qpos, np.float32)[:GOAL_DIM]
    return tuple(groups), start


def compose_goal(goals: np.ndarray, observations: np.ndarray) -> np.ndarray:
    """Cluster goals with every object they leave at its starting position set to its current state.

    A cluster goal is one dataset state: its arm pose plus the state of all seven objects. Taken as it is,
    a goal from a state where the microwave is still shut asks a policy that has opened it to shut it again
    (play never does that, so the low-level policy does something arbitrary). An object the goal state has
    not moved from its start says nothing about the task, so the current state of that object stands in.
    """
    groups, start = _object_groups()
    goals = np.array(goals, dtype=np.float32, copy=True)
    current = goal_features(observations)
    for idx in groups:
        untouched = np.linalg.norm(goals[:, idx] - start[idx], axis=1) < REST_TOLERANCE
        goals[np.ix_(untouched, idx)] = current[np.ix_(untouched, idx)]
    return goals


class KitchenPlayer:
    """Task-agnostic play: sequences of subtasks with action noise; random sequences of 2–4 subtasks in random
    order, or the kinds of D4RL's kitchen datasets (``style``, see
    :func:`~ptgm.domains.kitchen.controller.play_episode_plan`).

    ``finished`` turns True once the plan is done, which ends the play episode.
    """

    def __init__(self, env: gym.Env, rng: np.random.Generator, action_noise: float | None = None,
                 style: str = "random"):
        from ptgm.domains.kitchen.controller import (
            KitchenScriptedController,
            play_episode_plan,
        )

        kwargs = {} if action_noise is None else {"action_noise": action_noise}
        self.controller = KitchenScriptedController(env.unwrapped, rng, **kwargs)
        self.plan = list(play_episode_plan(rng, style, TASK_PRESETS[KitchenDomain.default_task]))
        self.finished = False
        self.controller.start(self.plan.pop(0))

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        if self.controller.done:
            if self.plan:
                self.controller.start(self.plan.pop(0))
            else:
                self.finished = True
        return self.controller(observation)


class KitchenDomain(Domain):
    name = "kitchen"
    default_task = "mkbl"
    goal_dim = GOAL_DIM
    obs_dim = OBS_DIM
    flat_baseline = "sac"  # continuous joint-velocity actions, as in the paper's Kitchen baselines
    bench_methods = ("ptgm", "spirl", "sac")  # SPiRL is the paper's main Kitchen baseline
    dataset_transitions = 150_000  # the size of D4RL kitchen-mixed
    play_styles = PLAY_STYLES
    score, score_threshold = "return", 3.0  # subtasks completed per episode; the paper's bar on mkbl
    dataset_observation_key = "observation"  # Minari/D4RL kitchen datasets store dict observations
    # The paper's Kitchen codebook has 50 goals. On this play data 200 do better at the same 1M env steps:
    # 2.67 ± 0.26 subtasks over 3 seeds against 1.54 ± 0.40 with 50 (2.88 ± 0.09 at 300k; results/LOG.md).
    n_clusters = 200
    # 28 high-level steps per episode and up to four subtasks: the later ones must still count.
    high_level_gamma = 0.99
    standardize_goal_features = True  # arm joints (rad) would otherwise outweigh the object joints in K-means
    # Goals up to 60 steps ahead: a single cluster goal then carries the arm through a whole subtask
    # (burners, cabinets); with 20, led by an oracle of codebook goals it scored 1.00 subtasks, with 60: 1.60.
    lowlevel_k_max = 60
    # The policy's mean action, not a sample: PTGM's policy scored 1.96 subtasks with it against 1.44 sampled,
    # and the k_max = 60 policy led by exact goals 1.55 against 0.20.
    deterministic_low_level = True
    # Without it PPO's updates grew (approximate KL peaks 0.13) and one seed's policy collapsed after a long
    # two-subtask plateau (entropy 0.33 -> 0.005 nats, return 2.0 -> 1.0); with 0.02 that seed and another ran
    # 1M env steps without falling, while a third still fell, at 640k (results/LOG.md).
    high_level_target_kl = 0.02

    def task_names(self) -> list[str]:
        return list(TASK_PRESETS) + [s.replace(" ", "_") for s in SUBTASKS]

    def achievement_names(self) -> list[str]:
        return list(SUBTASKS)

    def make_env(self, task: str | None = None, *, seed: int | None = None, **kwargs) -> gym.Env:
        env = KitchenEnv(task, **kwargs)
        if seed is not None:
            env.reset(seed=seed)
        return env

    def goal_features(self, observations: np.ndarray) -> np.ndarray:
        return goal_features(observations)

    def compose_goal(self, goal_features: np.ndarray, observations: np.ndarray) -> np.ndarray:
        return compose_goal(goal_features, observations)

    def scripted_player(self, env: gym.Env, rng: np.random.Generator, style: str | None = None) -> KitchenPlayer:
        return KitchenPlayer(env, rng, style=style or "random")

    def render_observation(self, observation: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_renderer"):
            from ptgm.domains.kitchen.env import ObservationRenderer

            self._renderer = ObservationRenderer()
        return self._renderer(observation)

    def describe_goal(self, observation: np.ndarray) -> str:
        done = completed_subtasks(observation)
        return ", ".join(s for s in SUBTASKS if s in done) or "nothing done"

    def goal_reached(self, observation: np.ndarray, goal_observation: np.ndarray) -> bool:
        """Every object joint within 0.1 of the goal's and every arm joint within 0.2 rad."""
        a, b = goal_features(np.stack([observation, goal_observation]))
        return bool(np.abs(a[9:] - b[9:]).max() <= 0.1 and np.abs(a[:7] - b[:7]).max() <= 0.2)

    def goal_is_trivial(self, observation: np.ndarray, goal_observation: np.ndarray) -> bool:
        """Trivial when the goal is already reached at the start."""
        return self.goal_reached(observation, goal_observation)

    def episode_achievements(self, infos: list[dict]) -> set[str]:
        return {name for info in infos for name in info.get("completed_subtasks", ())}

    def check_task(self, task: str) -> None:
        parse_task(task)


__all__ = ["KitchenDomain", "KitchenEnv", "KitchenPlayer", "SUBTASKS", "TASK_PRESETS", "compose_goal", "goal_features"]
