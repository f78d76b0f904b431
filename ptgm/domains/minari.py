"""Any Minari dataset as a domain, with no code: ``--domain minari --dataset ID_OR_PATH``.

The environment the dataset records (its env spec) is the task environment and its own reward is the task
reward; dictionary observations are flattened (in the order of the observation space), and the goal features
are the flattened observation or, with ``--goal-keys``, the entries of some of its keys (e.g. a maze's
``achieved_goal``). The dataset is the play data, so there is no scripted player and nothing to generate.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from ptgm.domains.base import Domain
from ptgm.utils import PTGMError


def flat_key_slices(space: gym.Space, prefix: str = "") -> dict[str, slice]:
    """Where each key of a (nested) dictionary space lies in its flattened vector, as
    :func:`gymnasium.spaces.flatten` lays it out (nested keys are joined with ``/``)."""
    slices, start = {}, 0
    for key, sub in space.spaces.items():
        name = prefix + key
        size = gym.spaces.flatdim(sub)
        slices[name] = slice(start, start + size)
        if isinstance(sub, gym.spaces.Dict):
            slices.update({k: slice(start + s.start, start + s.stop) for k, s in flat_key_slices(sub, name + "/").items()})
        start += size
    return slices


class MinariDomain(Domain):
    """The environment and play of one Minari dataset (see the module docstring).

    Args:
        dataset: the Minari dataset (a path, or an id in the local Minari store).
        goal_keys: keys of dictionary observations whose entries are the goal features (empty: all of them).
    """

    name = "minari"
    #: The settings (`--dataset`, `--goal-keys`) this domain is built from.
    options = ("dataset", "goal_keys")
    required_options = ("dataset",)
    score, score_threshold = "return", 1.0
    standardize_goal_features = True  # the entries of an arbitrary observation have arbitrary units
    n_clusters = 32
    high_level_gamma = 0.99
    #: Dictionary observations are read whole, flattened as ``FlattenObservation`` flattens the environment's.
    dataset_observation_key = "*"  # ptgm.data.dataset.FLATTEN

    def __init__(self, dataset: str | None = None, goal_keys: tuple[str, ...] = ()):
        self.dataset = dataset
        self.goal_keys = tuple(goal_keys or ())

    # -- what the dataset records --------------------------------------------------------------------------
    @functools.cached_property
    def _spec(self):
        import minari

        from ptgm.data.dataset import resolve_minari_path

        if not self.dataset:
            raise PTGMError("--domain minari needs --dataset ID_OR_PATH: the Minari dataset whose environment "
                            "and play it uses.")
        return minari.MinariDataset(resolve_minari_path(self.dataset)).spec

    @functools.cached_property
    def env_spec(self) -> gym.envs.registration.EnvSpec:
        """The environment the dataset was recorded in."""
        if self._spec.env_spec is None:
            raise PTGMError(f"The Minari dataset {self.dataset} records no environment (its env_spec is empty), so "
                            "there is no task to train on. Record it with minari's DataCollector around the env.")
        return self._spec.env_spec

    @property
    def default_task(self) -> str:  # type: ignore[override]
        return self.env_spec.id

    @property
    def action_space(self) -> gym.Space:  # type: ignore[override]
        return self._spec.action_space  # the dataset records it: no environment needs to be made

    @property
    def flat_baseline(self) -> str:  # type: ignore[override]
        return "sac" if isinstance(self.action_space, gym.spaces.Box) else "ppo"

    @property
    def bench_methods(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("ptgm", self.flat_baseline)

    def task_names(self) -> list[str]:
        return [self.env_spec.id]

    def check_task(self, task: str) -> None:
        if task != self.env_spec.id:
            raise PTGMError(f"The minari domain's task is the environment its dataset records, {self.env_spec.id}; "
                            f"got --task {task}. Leave --task unset.")

    def make_env(self, task: str | None = None, *, seed: int | None = None, max_steps: int | None = None,
                 **kwargs) -> gym.Env:
        """The recorded environment, observations flattened to float32 as the dataset is read."""
        if task is not None:
            self.check_task(task)
        if max_steps is not None:
            kwargs["max_episode_steps"] = max_steps
        try:
            env = gym.make(self.env_spec, **kwargs)
        except (gym.error.Error, ImportError, ModuleNotFoundError, AttributeError) as exc:
            raise PTGMError(f"The Minari dataset {self.dataset} was recorded in {self.env_spec.id} "
                            f"({self.env_spec.entry_point}), which cannot be made here ({type(exc).__name__}: "
                            f"{exc}). Install the package that provides it.") from exc
        if isinstance(env.observation_space, gym.spaces.Dict):
            env = gym.wrappers.FlattenObservation(env)
        if env.observation_space.dtype == np.float64:  # float datasets are read as float32
            env = gym.wrappers.DtypeObservation(env, np.float32)
        if seed is not None:
            env.reset(seed=seed)
        return env

    # -- goals ----------------------------------------------------------------------------------------------
    @functools.cached_property
    def goal_index(self) -> np.ndarray:
        """The entries of the flattened observation that are goal features."""
        space = self._spec.observation_space
        if not self.goal_keys:
            return np.arange(gym.spaces.flatdim(space))
        if not isinstance(space, gym.spaces.Dict):
            raise PTGMError(f"--goal-keys picks keys of dictionary observations, but {self.dataset}'s observations "
                            f"are {space}. Leave --goal-keys unset.")
        slices = flat_key_slices(space)
        unknown = [k for k in self.goal_keys if k not in slices]
        if unknown:
            raise PTGMError(f"Unknown goal key(s) {', '.join(unknown)} for {self.dataset}; its observations have "
                            f"the keys {', '.join(slices)}.")
        return np.concatenate([np.arange(slices[k].start, slices[k].stop) for k in self.goal_keys])

    def goal_features(self, observations: np.ndarray) -> np.ndarray:
        return np.asarray(observations, np.float32)[:, self.goal_index]

    def scripted_player(self, env: gym.Env, rng: np.random.Generator):
        self.check_can_play()

    def check_can_play(self) -> None:
        raise PTGMError("--domain minari plays nothing: its play data is the dataset itself. Skip `ptgm generate` "
                        "and pass --dataset to every command.")

    def render_observation(self, observation: np.ndarray) -> np.ndarray:
        """The goal features as a strip of coloured cells (the environment cannot be put into an observation's
        state in general): one cell per feature, squashed by tanh."""
        from matplotlib import colormaps

        values = np.tanh(self.goal_features(np.asarray(observation)[None])[0])
        cells = colormaps["coolwarm"]((values + 1.0) / 2.0)[:, :3]
        strip = (np.repeat(np.repeat(cells[None], 24, axis=0), 12, axis=1) * 255).astype(np.uint8)
        return strip
