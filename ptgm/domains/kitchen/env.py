"""Franka Kitchen (``FrankaKitchen-v1``, gymnasium-robotics) with tasks as lists of subtasks.

Observation: the environment's 59-value ``observation`` vector (float32), the layout
of the D4RL / Minari kitchen datasets:

====================  =====================================================
indices               content
====================  =====================================================
0–8                   robot joint positions (7 arm joints, 2 fingers)
9–17                  robot joint velocities
18–38                 object joint positions (burner knobs and burners,
                      light switch, slide and hinge cabinets, microwave door,
                      kettle position xyz and quaternion)
39–58                 object joint velocities
====================  =====================================================

Action: 9 joint velocities in [-1, 1] (the environment turns them into position
targets). A task is any subset of the seven subtasks in any order; the reward is 1
per subtask completed (by the environment's own check: the subtask's joints within
0.3 of their goal) and the episode score, ``info["score"]``, is the number completed.
With ``ordered=True`` only the next subtask in the list counts, as in the paper's
sequential Kitchen task.
"""

from __future__ import annotations

import atexit

import gymnasium as gym
import numpy as np

from ptgm.utils import PTGMError

SUBTASKS: tuple[str, ...] = (
    "microwave", "kettle", "bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet",
)
#: Named tasks. ``mkbl`` is the paper's: microwave, kettle, bottom burner, light switch.
TASK_PRESETS: dict[str, tuple[str, ...]] = {
    "mkbl": ("microwave", "kettle", "bottom burner", "light switch"),
    "all": SUBTASKS,
}
#: The kinds of play ``ptgm generate --play`` records in Kitchen, after D4RL's three kitchen datasets, and the
#: transitions each records when not told (about the sizes of D4RL's: 3,680 complete, 136,950 partial and mixed).
PLAY_STYLES: dict[str, int] = {"random": 150_000, "complete": 4_000, "partial": 137_000, "mixed": 137_000}
#: Episodes of ``partial`` play that perform the whole target sequence.
PARTIAL_TARGET_FRACTION = 0.3


OBS_DIM = 59
#: Observation index of the first object joint position (object qpos index 9 is observation index 18).
OBJECT_QPOS_START = 18
N_OBJECT_QPOS = 21
DEFAULT_MAX_STEPS = 280


def parse_task(task: str | None) -> tuple[str, ...]:
    """Subtasks of a task name: a preset, one subtask, or a comma-separated list (``_`` may stand for a space)."""
    if task is None or task == "":
        return ()
    if task in TASK_PRESETS:
        return TASK_PRESETS[task]
    names = tuple(part.strip().replace("_", " ") for part in task.split(","))
    unknown = [n for n in names if n not in SUBTASKS]
    if unknown:
        raise PTGMError(
            f"Unknown Kitchen subtask {', '.join(map(repr, unknown))}. Subtasks: "
            f"{', '.join(s.replace(' ', '_') for s in SUBTASKS)}; presets: {', '.join(TASK_PRESETS)}. "
            "A task is a preset or a comma-separated list, e.g. microwave,kettle,bottom_burner."
        )
    if len(set(names)) != len(names):
        raise PTGMError(f"Kitchen task {task!r} names a subtask twice.")
    return names


def subtask_obs_indices() -> dict[str, np.ndarray]:
    """Observation indices of each subtask's joints (the environment indexes qpos; observation = qpos + 9)."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_INDICES

    return {name: np.asarray(idx) + 9 for name, idx in OBS_ELEMENT_INDICES.items()}


def completed_subtasks(observation: np.ndarray) -> set[str]:
    """Subtasks whose joints are within the environment's threshold of their goal in ``observation``."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
        BONUS_THRESH,
        OBS_ELEMENT_GOALS,
    )

    return {name for name, idx in subtask_obs_indices().items()
            if np.linalg.norm(observation[idx] - OBS_ELEMENT_GOALS[name]) < BONUS_THRESH}


class KitchenEnv(gym.Env):
    """``FrankaKitchen-v1`` with a flat float32 observation and a task of subtasks.

    Args:
        task: a preset (``mkbl``), a subtask, or a comma-separated list; ``None`` is reward-free play.
        max_steps: episode step limit (280, the environment's default).
        ordered: reward only the next subtask of the list, in order.
        render_mode: ``"rgb_array"`` for pixels via :meth:`render`.
        robot_noise_ratio, object_noise_ratio: the environment's observation noise (its defaults).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12}

    def __init__(self, task: str | None = None, max_steps: int = DEFAULT_MAX_STEPS, ordered: bool = False,
                 render_mode: str | None = None, robot_noise_ratio: float = 0.01, object_noise_ratio: float = 0.0005):
        from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
            KitchenEnv as RoboticsKitchen,
        )

        self.subtasks = parse_task(task)
        self.task = task
        self.max_steps = max_steps
        self.ordered = ordered
        self.render_mode = render_mode
        # The wrapped env tracks no tasks: completion is checked here, so play (no task) and
        # ordered tasks use the same code path and the episode never ends behind our back.
        self.kitchen = RoboticsKitchen(tasks_to_complete=[], terminate_on_tasks_completed=False,
                                       robot_noise_ratio=robot_noise_ratio, object_noise_ratio=object_noise_ratio)
        self.model, self.data = self.kitchen.model, self.kitchen.data
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (9,), np.float32)
        self._renderer = None
        self._steps = 0
        self._done: list[str] = []

    def _true_observation(self) -> np.ndarray:
        """Noise-free joint state in the observation layout (what completion is judged on)."""
        obs = np.zeros(OBS_DIM)
        obs[:9] = self.data.qpos[:9]
        obs[OBJECT_QPOS_START:OBJECT_QPOS_START + N_OBJECT_QPOS] = self.data.qpos[9:]
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, _ = self.kitchen.reset(seed=seed)
        self._steps = 0
        self._done = []
        return obs["observation"].astype(np.float32), self._info([])

    def _info(self, new: list[str]) -> dict:
        remaining = [s for s in self.subtasks if s not in self._done]
        return {"step_task_completions": new, "episode_task_completions": list(self._done),
                "tasks_to_complete": remaining, "score": len(self._done),
                "is_success": bool(self.subtasks) and not remaining}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        obs, _, _, _, _ = self.kitchen.step(action)
        self._steps += 1
        new: list[str] = []
        finished = completed_subtasks(self._true_observation())
        if self.subtasks:
            candidates = [s for s in self.subtasks if s not in self._done]
            if self.ordered:
                candidates = candidates[:1]
            new = [s for s in candidates if s in finished]
            self._done += new
        info = self._info(new)
        info["completed_subtasks"] = sorted(finished)  # also in play, for the dataset's coverage report
        terminated = info["is_success"]
        truncated = not terminated and self._steps >= self.max_steps
        return obs["observation"].astype(np.float32), float(len(new)), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return render_state(self.model, self.data, self)

    def close(self):
        close_renderer(self)
        self.kitchen.close()


# -- rendering ---------------------------------------------------------------------------
def render_state(model, data, owner, width: int = 160, height: int = 120) -> np.ndarray:
    """An RGB frame of the current simulator state from the environment's default viewpoint.

    MuJoCo's offscreen renderer needs an OpenGL backend: ``MUJOCO_GL=egl`` works on these
    machines (osmesa is not installed); :mod:`ptgm.domains.kitchen` sets it when unset.
    """
    import mujoco

    if getattr(owner, "_renderer", None) is None:
        owner._renderer = mujoco.Renderer(model, height, width)
        # Freed at exit before MuJoCo ends EGL (registered after MuJoCo's own handler, so it runs first).
        atexit.register(close_renderer, owner)
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = [-0.2, 0.5, 2.0]
        camera.distance, camera.azimuth, camera.elevation = 2.2, 70.0, -35.0
        owner._camera = camera
    owner._renderer.update_scene(data, camera=owner._camera)
    return owner._renderer.render().copy()


def close_renderer(owner) -> None:
    """Free ``owner``'s MuJoCo renderer now: freed at exit instead, its EGL context reports errors."""
    if getattr(owner, "_renderer", None) is not None:
        owner._renderer.close()
        owner._renderer = None


class ObservationRenderer:
    """Draws a Kitchen observation by putting its joint positions into a private simulator."""

    def __init__(self, width: int = 160, height: int = 120):
        import mujoco

        self.env = KitchenEnv()
        self.width, self.height = width, height
        self._renderer = None
        self._mujoco = mujoco

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        model, data = self.env.model, self.env.data
        data.qpos[:9] = observation[:9]
        data.qpos[9:] = observation[OBJECT_QPOS_START:OBJECT_QPOS_START + N_OBJECT_QPOS]
        data.qvel[:] = 0
        self._mujoco.mj_forward(model, data)
        return render_state(model, data, self, self.width, self.height)

    def close(self) -> None:
        close_renderer(self)
        self.env.close()
