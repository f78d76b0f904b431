"""Datasets larger than memory: a Minari dataset read a chunk of whole episodes at a time.

The pre-training stages (``ptgm pretrain``, ``cluster``, ``prior``, ``spirl``) take ``--memory-rows N``: when
the dataset holds more rows than that, they never load it whole. Training draws its batches from one chunk of at
most N rows of whole episodes (so hindsight goals and skill windows stay inside their episode), moving to
another chunk, drawn at random, after about as many batches as it takes to see that chunk once; under torchrun
each process keeps to its own chunks. Held-out episodes are one more chunk; K-means runs on a sample drawn chunk
by chunk. The dataset's fingerprint is computed the same way, and equals the one of the dataset loaded whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ptgm.data.dataset import TrajectoryData, load_minari, resolve_minari_path, split_episode_ids
from ptgm.utils import PTGMError

#: Largest share of ``--memory-rows`` the held-out chunk may take.
VAL_SHARE = 0.25


@dataclass
class EpisodeChunks:
    """A Minari dataset known by its episodes' lengths, read a chunk of episodes at a time.

    Attributes:
        path: the dataset directory.
        observation_key: as for :func:`~ptgm.data.dataset.load_minari`.
        lengths: ``(episodes,)`` rows of each episode (its steps plus the final observation).
    """

    path: Path
    observation_key: str | None
    lengths: np.ndarray

    @classmethod
    def open(cls, dataset: str | Path, observation_key: str | None = None) -> "EpisodeChunks":
        import minari

        path = resolve_minari_path(dataset)
        try:
            storage = minari.MinariDataset(path).storage
            metadata = storage.get_episode_metadata(range(storage.total_episodes))
            lengths = np.array([int(m["total_steps"]) + 1 for m in metadata], np.int64)
        except Exception as exc:  # h5py / json errors for truncated or corrupt files
            raise PTGMError(f"Could not read the episodes of the Minari dataset at {path} ({type(exc).__name__}). "
                            "It is corrupt or incomplete: regenerate it (`ptgm generate --force`).") from exc
        return cls(path, observation_key, lengths)

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_rows(self) -> int:
        return int(self.lengths.sum())

    def groups(self, episodes: np.ndarray, max_rows: int) -> list[np.ndarray]:
        """``episodes`` (in their order) cut into consecutive groups of at most ``max_rows`` rows; an episode
        longer than that is a group of its own."""
        groups, current, rows = [], [], 0
        for episode in np.asarray(episodes).tolist():
            if current and rows + self.lengths[episode] > max_rows:
                groups.append(np.array(current))
                current, rows = [], 0
            current.append(episode)
            rows += int(self.lengths[episode])
        if current:
            groups.append(np.array(current))
        return groups

    def load(self, episodes: np.ndarray) -> TrajectoryData:
        """These episodes (indices into the dataset) as one :class:`TrajectoryData`."""
        return load_minari(self.path, observation_key=self.observation_key, episode_ids=list(episodes))

    def fingerprint(self, max_rows: int, visit=None) -> str:
        """:func:`~ptgm.data.dataset.fingerprint` of the whole dataset, read ``max_rows`` rows at a time (the
        actions, small, are kept until the observations are hashed); ``visit(chunk)``, if given, sees each chunk
        in the dataset's order, so a pass that needs them too reads the file once."""
        digest = hashlib.blake2b(digest_size=12)
        actions = []
        for i, group in enumerate(self.groups(np.arange(self.n_episodes), max_rows)):
            chunk = self.load(group)
            if visit is not None:
                visit(chunk)
            if i == 0:
                shape = (self.n_rows,) + chunk.observations.shape[1:]
                digest.update(f"{shape}{chunk.observations.dtype}".encode())
            digest.update(memoryview(np.ascontiguousarray(chunk.observations)).cast("B"))
            actions.append(chunk.actions)
        action_rows = np.concatenate(actions)
        digest.update(f"{action_rows.shape}{action_rows.dtype}".encode())
        digest.update(memoryview(np.ascontiguousarray(action_rows)).cast("B"))
        return digest.hexdigest()


@dataclass
class Rows:
    """Training rows in memory: a chunk, what a stage computed of it (tensors on its device, arrays), and the
    rows of it that batches are drawn from (:func:`stage_data` sets them)."""

    data: TrajectoryData
    tensors: dict[str, torch.Tensor | np.ndarray]
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class ChunkSampler:
    """The chunk that batches come from: one fixed chunk, or, streaming, a chunk drawn at random among
    ``groups`` and replaced by another with probability ``1 / batches_per_chunk`` at each batch.

    The choice is drawn from the batch generator, so a resumed run (whose generator is restored) draws the
    same kind of sequence; ``prepare`` turns a loaded chunk into :class:`Rows` (its tensors on the device).
    """

    def __init__(self, chunks: EpisodeChunks | None, groups: list[np.ndarray], prepare, batch_size: int,
                 fixed: Rows | None = None):
        self.chunks, self.groups, self.prepare, self.batch_size = chunks, groups, prepare, batch_size
        self._current = fixed
        self.streaming = fixed is None

    def current(self, rng: np.random.Generator) -> Rows:
        if self.streaming and (self._current is None
                               or rng.random() < self.batch_size / max(len(self._current.rows), 1)):
            self._current = None  # the old chunk's memory goes before the new one comes
            self._current = self.prepare(self.chunks.load(self.groups[int(rng.integers(len(self.groups)))]))
        return self._current


def streamed(memory_rows: int, n_rows: int) -> bool:
    """Whether a dataset of ``n_rows`` rows is read chunk by chunk under ``--memory-rows memory_rows``."""
    return 0 < memory_rows < n_rows


def own_groups(groups: list[np.ndarray], rank: int, world: int) -> list[np.ndarray]:
    """The groups process ``rank`` of ``world`` trains on (all of them where there are fewer than processes)."""
    return groups[rank::world] if len(groups) >= world else groups


def held_out(chunks: EpisodeChunks, val_episodes: np.ndarray, memory_rows: int) -> np.ndarray:
    """The held-out episodes that fit in ``VAL_SHARE`` of ``memory_rows`` (at least one)."""
    budget = VAL_SHARE * memory_rows
    kept = np.flatnonzero(np.cumsum(chunks.lengths[val_episodes]) <= budget)
    return val_episodes[: max(1, len(kept))]


@dataclass
class StageData:
    """What a training stage needs of its dataset, loaded whole or streamed.

    Attributes:
        sampler: where the training batches come from (under torchrun, this process's share).
        val: the held-out rows (streaming: the held-out episodes that fit in a quarter of ``memory_rows``).
        fingerprint: the whole dataset's (streaming, computed by rank 0 only; "" on the others).
        train_transitions: training rows (by default transitions) of all processes together.
        held_out_episodes: ``(data, episodes)`` to start tests from: the held-out episodes of ``data``.
    """

    sampler: ChunkSampler
    val: Rows
    fingerprint: str
    train_transitions: int
    held_out_episodes: tuple[TrajectoryData, np.ndarray]


def stage_data(source: str | Path, observation_key: str | None, memory_rows: int, val_fraction: float, seed: int,
               prepare, batch_size: int, rows_of=TrajectoryData.action_rows,
               rows_per_episode=lambda lengths: lengths - 1) -> StageData:
    """The dataset at ``source`` split into training and held-out episodes, whole when it fits in
    ``memory_rows`` (or that is 0), else streamed chunk by chunk.

    ``prepare(data) -> Rows`` makes a chunk's tensors; ``rows_of(data, episodes)`` says which of its rows batches
    start from (default: those with an action; SPiRL: the starts of whole skill windows) and
    ``rows_per_episode(lengths)`` how many that is per episode of ``lengths`` rows.
    """
    from ptgm import distributed

    def prepare_chunk(data: TrajectoryData) -> Rows:
        part = prepare(data)
        part.rows = rows_of(data, np.arange(data.n_episodes))
        return part

    chunks = EpisodeChunks.open(source, observation_key)
    train_eps, val_eps = split_episode_ids(chunks.n_episodes, val_fraction, seed)
    if streamed(memory_rows, chunks.n_rows):
        val_data = chunks.load(held_out(chunks, val_eps, memory_rows))
        groups = own_groups(chunks.groups(train_eps, memory_rows), distributed.rank(), distributed.world_size())
        fingerprint = chunks.fingerprint(memory_rows) if distributed.is_main() else ""
        return StageData(ChunkSampler(chunks, groups, prepare_chunk, batch_size), prepare_chunk(val_data),
                         fingerprint, int(np.maximum(rows_per_episode(chunks.lengths[train_eps]), 0).sum()),
                         (val_data, np.arange(val_data.n_episodes)))
    data = chunks.load(np.arange(chunks.n_episodes))
    whole = prepare(data)
    train_rows = rows_of(data, train_eps)
    fixed = Rows(data, whole.tensors, distributed.rank_rows(train_rows))
    return StageData(ChunkSampler(None, [], prepare_chunk, batch_size, fixed=fixed),
                     Rows(data, whole.tensors, rows_of(data, val_eps)), data.fingerprint, len(train_rows),
                     (data, val_eps))
