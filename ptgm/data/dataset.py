"""Task-agnostic datasets: Minari on disk, :class:`TrajectoryData` in memory.

Every PTGM stage reads the same in-memory layout: all episodes' observations stacked
row by row, *including* each episode's final observation (which has no action), so
that hindsight goals ``s_{t+k}`` can be looked up by row index.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from ptgm.utils import PTGMError, short_reason


@dataclass
class TrajectoryData:
    """Episodes stacked row-wise.

    Attributes:
        observations: ``(rows, obs_dim)``; each episode contributes ``T + 1`` rows.
        actions: ``(rows, ...)``; the action taken at that row (a final row holds a dummy 0).
        has_action: ``(rows,)`` False on each episode's final observation.
        episode_index: ``(rows,)`` which episode a row belongs to.
        episode_end: ``(rows,)`` row index of that episode's final observation.
        episode_seeds: ``(episodes,)`` the ``reset(seed=...)`` of each episode, -1 if unknown.
        fingerprint: content hash; codebooks and priors record it to detect mix-ups.
    """

    observations: np.ndarray
    actions: np.ndarray
    has_action: np.ndarray
    episode_index: np.ndarray
    episode_end: np.ndarray
    episode_seeds: np.ndarray
    fingerprint: str

    @classmethod
    def from_episodes(cls, observations: list[np.ndarray], actions: list[np.ndarray],
                      seeds: list[int] | None = None) -> "TrajectoryData":
        """Build from per-episode arrays: ``observations[i]`` has one row more than ``actions[i]``."""
        if not observations:
            raise PTGMError("The dataset holds no episodes. Generate one with `ptgm generate`.")
        obs_rows, act_rows, has_action, ep_index, ep_end = [], [], [], [], []
        start = 0
        for i, (obs, act) in enumerate(zip(observations, actions)):
            obs, act = np.asarray(obs), np.asarray(act)
            if len(obs) != len(act) + 1:
                raise PTGMError(
                    f"Episode {i} has {len(obs)} observations and {len(act)} actions; expected one more "
                    "observation than actions (the final one). The dataset is malformed: regenerate it."
                )
            dummy = np.zeros((1,) + act.shape[1:], act.dtype)
            obs_rows.append(obs)
            act_rows.append(np.concatenate([act, dummy]))
            flags = np.ones(len(obs), bool)
            flags[-1] = False
            has_action.append(flags)
            ep_index.append(np.full(len(obs), i))
            ep_end.append(np.full(len(obs), start + len(obs) - 1))
            start += len(obs)
        observations_arr = np.concatenate(obs_rows)
        actions_arr = np.concatenate(act_rows)
        if np.issubdtype(observations_arr.dtype, np.floating) and not np.isfinite(observations_arr).all():
            raise PTGMError("The dataset's observations contain NaN or infinite values. Regenerate or clean it.")
        return cls(
            observations=observations_arr,
            actions=actions_arr,
            has_action=np.concatenate(has_action),
            episode_index=np.concatenate(ep_index),
            episode_end=np.concatenate(ep_end),
            episode_seeds=np.asarray(seeds if seeds is not None else [-1] * len(observations), np.int64),
            fingerprint=fingerprint(observations_arr, actions_arr),
        )

    @property
    def n_episodes(self) -> int:
        return int(self.episode_index[-1]) + 1

    @property
    def n_transitions(self) -> int:
        return int(self.has_action.sum())

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    def action_rows(self, episodes: np.ndarray | None = None) -> np.ndarray:
        """Row indices that carry an action, optionally only in the given episodes."""
        mask = self.has_action
        if episodes is not None:
            mask = mask & np.isin(self.episode_index, episodes)
        return np.flatnonzero(mask)

    def split_episodes(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Train / validation episode indices (whole episodes, so no leakage through goals)."""
        return split_episode_ids(self.n_episodes, val_fraction, seed)

    def check_observation_size(self, expected: int, where: str) -> None:
        if self.obs_dim != expected:
            raise PTGMError(
                f"The dataset's observations have {self.obs_dim} values each, but {where} expects {expected}. "
                "The dataset was made for another environment or version: regenerate it with `ptgm generate` "
                "or pass the matching --domain."
            )


def split_episode_ids(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation indices of ``n_episodes`` episodes, the same for a dataset loaded whole or in chunks."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_episodes)
    n_val = max(1, int(round(val_fraction * n_episodes))) if n_episodes > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fingerprint(observations: np.ndarray, actions: np.ndarray) -> str:
    """A short content hash of a dataset (shape, dtype and bytes of observations and actions)."""
    digest = hashlib.blake2b(digest_size=12)
    for array in (observations, actions):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


# -- Minari ------------------------------------------------------------------------------
@contextmanager
def _minari_root(root: Path):
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_minari(root: Path, dataset_id: str, episodes: list[dict], observation_space: gym.Space,
                 action_space: gym.Space, description: str = "", algorithm_name: str = "") -> Path:
    """Write episodes (dicts of observations/actions/rewards/terminations/truncations, seed) as a Minari dataset.

    The dataset is written under a temporary id and renamed into place, so an
    interrupted write never leaves a half dataset at ``root/dataset_id``.
    """
    import shutil

    import minari
    from minari.data_collector import EpisodeBuffer

    root = Path(root).resolve()  # Minari mangles relative store paths
    final = root / dataset_id
    tmp_id = "unfinished-" + dataset_id  # Minari ids must end in -vN
    shutil.rmtree(root / tmp_id, ignore_errors=True)
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=int(ep["seed"]) if ep.get("seed") is not None else None,
            observations=np.asarray(ep["observations"]),
            actions=np.asarray(ep["actions"]),
            rewards=np.asarray(ep["rewards"], np.float64),
            terminations=np.asarray(ep["terminations"], bool),
            truncations=np.asarray(ep["truncations"], bool),
            infos={},
        )
        for i, ep in enumerate(episodes)
    ]
    with _minari_root(root), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Minari nags about optional metadata (e-mail, permalink)
        minari.create_dataset_from_buffers(
            dataset_id=tmp_id,
            buffer=buffers,
            observation_space=observation_space,
            action_space=action_space,
            algorithm_name=algorithm_name or "ptgm scripted player",
            author="ptgm",
            description=description or "Task-agnostic play data generated by ptgm.",
            data_format="hdf5",
        )
    shutil.rmtree(final, ignore_errors=True)
    os.replace(root / tmp_id, final)
    return final


def resolve_minari_path(dataset: str | Path) -> Path:
    """A dataset directory from a path, or from an id in the local Minari store (``~/.minari/datasets``)."""
    path = Path(dataset)
    candidates = [path, path / "data"]
    if not path.is_absolute():
        from minari.storage import get_dataset_path

        store = get_dataset_path(str(dataset))
        candidates += [store, store / "data"]
    for candidate in candidates:
        if (candidate / "metadata.json").exists():
            return candidate
    download = ""
    if not path.is_absolute() and str(dataset).count("/") >= 1 and not path.exists():
        # Looks like a Minari hub id (e.g. D4RL/kitchen/mixed-v2): say how to fetch it.
        download = f" With internet access, get it with `pip install 'minari[hdf5]' && minari download {dataset}`."
    raise PTGMError(
        f"No Minari dataset at {dataset!s} (looked for metadata.json in {', '.join(str(c) for c in candidates)}). "
        f"Generate one with `ptgm generate`, or pass the path of a Minari dataset directory.{download}"
    )


def _float32(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) if array.dtype == np.float64 else array


#: ``observation_key`` that reads dictionary observations whole, flattened in the order of the observation space
#: (as :func:`gymnasium.spaces.flatten` and ``FlattenObservation`` lay them out).
FLATTEN = "*"


def flatten_observations(space: gym.Space, observations) -> np.ndarray:
    """``(T, flat_dim)`` rows of a (nested) dictionary of per-key arrays, in the order of ``space``."""
    if isinstance(space, gym.spaces.Dict):
        parts = [flatten_observations(sub, observations[key]) for key, sub in space.spaces.items()]
        return np.concatenate([p.astype(np.float32) for p in parts], axis=1)
    array = np.asarray(observations)
    return array.reshape(len(array), -1)


def load_minari(dataset: str | Path, max_episodes: int | None = None,
                observation_key: str | None = None, episode_ids: list[int] | None = None) -> TrajectoryData:
    """Read a Minari dataset (path or local id) into :class:`TrajectoryData`, with clear errors; all its
    episodes, the first ``max_episodes``, or those of ``episode_ids`` (in that order).

    Datasets with dictionary observations (the D4RL kitchen layout: ``observation``,
    ``achieved_goal``, ``desired_goal``) are read through ``observation_key``, or whole and flattened with
    ``observation_key=FLATTEN``. Float observations and actions are stored as float32.
    """
    import minari

    data_path = resolve_minari_path(dataset)
    try:
        ds = minari.MinariDataset(data_path)
        n = ds.total_episodes if max_episodes is None else min(max_episodes, ds.total_episodes)
        ids = list(range(n)) if episode_ids is None else [int(i) for i in episode_ids]
        episodes = ds.iterate_episodes(ids)
        observations, actions = [], []
        for ep in episodes:
            obs = ep.observations
            if isinstance(obs, dict) and observation_key == FLATTEN:
                obs = flatten_observations(ds.spec.observation_space, obs)
            elif isinstance(obs, dict):
                if observation_key not in obs:
                    raise PTGMError(
                        f"The Minari dataset at {data_path} has dictionary observations (keys "
                        f"{', '.join(sorted(obs))}) and no flat observation was asked for under {observation_key!r}. "
                        "Pass the --domain whose datasets look like this (e.g. --domain kitchen for D4RL kitchen), or "
                        "--domain minari, which reads them whole."
                    )
                obs = obs[observation_key]
            observations.append(_float32(np.asarray(obs)))
            actions.append(_float32(np.asarray(ep.actions)))
        metadata = ds.storage.get_episode_metadata(ids)
        seeds = [int(m.get("seed", -1)) if m.get("seed") is not None else -1 for m in metadata]
    except PTGMError:
        raise
    except Exception as exc:  # h5py / json errors for truncated or corrupt files
        raise PTGMError(
            f"Could not read the Minari dataset at {data_path} ({type(exc).__name__}: {short_reason(exc)}). It is "
            f"corrupt or incomplete: regenerate it with `ptgm generate --run-dir {Path(data_path).parents[2]} --force` "
            "(a dataset of your own: record it again)."
        ) from exc
    return TrajectoryData.from_episodes(observations, actions, seeds)
