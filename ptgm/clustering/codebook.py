"""`ptgm cluster`: K-means over dataset goals; the N cluster goals are the high-level actions."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import run_dataset_path
from ptgm.data.shards import EpisodeChunks, streamed
from ptgm.domains import domain_of
from ptgm.settings import ClusterConfig
from ptgm.utils import (
    PTGMError,
    atomic_savez,
    dataset_inputs,
    fingerprint_of,
    mark_stage_done,
    prepare_stage,
    short_reason,
)

logger = logging.getLogger(__name__)


@dataclass
class Codebook:
    """N discrete goals: K-means centres and, for each, the dataset state nearest to it.

    Attributes:
        centers: ``(N, goal_dim)`` K-means centres in goal-feature space.
        goal_features: ``(N, goal_dim)`` features of the cluster goals (what the low-level policy is given).
        goal_observations: ``(N, obs_dim)`` the cluster goal states themselves (for pictures).
        goal_rows: ``(N,)`` their row in the dataset.
        cluster_sizes: ``(N,)`` sampled states assigned to each cluster.
        dataset_fingerprint: the fingerprint of the dataset it was built from.
        domain: the domain's name.
        feature_scale: ``(goal_dim,)`` what each feature is divided by before distances are taken
            (ones: plain Euclidean distance; see ``Domain.standardize_goal_features``).
        settings: the clustering's settings (number of clusters, seed, samples, restarts).

    Its own :attr:`fingerprint` (dataset, settings and content) is what the prior and the policies trained on
    its goals record: another clustering of the same dataset, in place or elsewhere, has another one.
    """

    centers: np.ndarray
    goal_features: np.ndarray
    goal_observations: np.ndarray
    goal_rows: np.ndarray
    cluster_sizes: np.ndarray
    dataset_fingerprint: str
    domain: str
    feature_scale: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.feature_scale is None:
            self.feature_scale = np.ones(self.centers.shape[1], np.float32)

    @property
    def fingerprint(self) -> str:
        """What this codebook is: its dataset, settings and goals (the goal indices of a prior mean these goals)."""
        return fingerprint_of("codebook", self.dataset_fingerprint, self.domain, json.dumps(self.settings, sort_keys=True),
                              self.centers, self.goal_features, self.feature_scale)

    @property
    def n_goals(self) -> int:
        return int(len(self.centers))

    def assign(self, features: np.ndarray, batch: int = 65536) -> np.ndarray:
        """Index of the nearest centre for each row of goal features."""
        if features.shape[1] != self.centers.shape[1]:
            raise PTGMError(f"These goal features have {features.shape[1]} entries, the codebook's goals "
                            f"{self.centers.shape[1]}: they come from other goal features (e.g. another --goal-keys). "
                            "Give every command the settings `ptgm cluster` had, or rebuild the codebook with "
                            "`ptgm cluster --force`.")
        out = np.empty(len(features), np.int64)
        centers = self.centers / self.feature_scale
        c2 = (centers**2).sum(1)
        for i in range(0, len(features), batch):
            f = features[i : i + batch] / self.feature_scale
            out[i : i + batch] = (c2[None] - 2 * f @ centers.T).argmin(1)
        return out

    def save(self, path: Path) -> None:
        atomic_savez(path, centers=self.centers, goal_features=self.goal_features,
                     goal_observations=self.goal_observations, goal_rows=self.goal_rows,
                     cluster_sizes=self.cluster_sizes, fingerprint=np.asarray(self.dataset_fingerprint),
                     domain=np.asarray(self.domain), feature_scale=self.feature_scale,
                     settings=np.asarray(json.dumps(self.settings)))

    @classmethod
    def load(cls, path: Path) -> "Codebook":
        path = Path(path)
        fix = f"Rebuild it with `ptgm cluster --run-dir {path.parent.parent} --force`."
        if not path.exists():
            raise PTGMError(f"No goal codebook at {path}. {fix}")
        try:
            with np.load(path) as z:
                return cls(centers=z["centers"], goal_features=z["goal_features"],
                           goal_observations=z["goal_observations"], goal_rows=z["goal_rows"],
                           cluster_sizes=z["cluster_sizes"], dataset_fingerprint=str(z["fingerprint"]),
                           domain=str(z["domain"]),
                           feature_scale=z["feature_scale"] if "feature_scale" in z.files else None,
                           settings=json.loads(str(z["settings"])) if "settings" in z.files else {})
        except Exception as exc:
            raise PTGMError(f"The goal codebook at {path} is corrupt ({short_reason(exc)}). {fix}") from exc

    def check_matches(self, fingerprint: str, what: str) -> None:
        """Refuse to combine pieces built from different datasets."""
        if fingerprint != self.dataset_fingerprint:
            raise PTGMError(
                f"The goal codebook was built from dataset {self.dataset_fingerprint}, but {what} comes from dataset "
                f"{fingerprint}. Rebuild the codebook on this dataset with `ptgm cluster --force` "
                "(and then the prior with `ptgm prior --force`)."
            )


#: Smallest scale a standardised feature gets: features that hardly vary (an object nobody moves) are
#: not blown up to the weight of those that do.
MIN_FEATURE_SCALE = 0.05


def build_codebook(data: TrajectoryData, features: np.ndarray, n_clusters: int, max_samples: int,
                   seed: int, n_init: int, domain: str, standardize: bool = False) -> Codebook:
    """K-means on (a sample of) the dataset's goal features; goal = sampled state nearest each centre.

    With ``standardize`` every feature is divided by its standard deviation over the sample (at least
    ``MIN_FEATURE_SCALE``) before clustering, and the codebook keeps that scale for assigning states.
    """
    if n_clusters > len(features):
        raise PTGMError(f"Asked for {n_clusters} clusters but the dataset has only {len(features)} states; "
                        "use fewer clusters (--n-clusters) or more data.")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(features), size=min(max_samples, len(features)), replace=False))
    scale = np.ones(features.shape[1], np.float32)
    if standardize:
        scale = np.maximum(features[sample].std(0), MIN_FEATURE_SCALE).astype(np.float32)
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(features[sample] / scale)
    centers = (kmeans.cluster_centers_ * scale).astype(np.float32)
    labels = kmeans.labels_
    goal_rows = np.empty(n_clusters, np.int64)
    for c in range(n_clusters):
        members = sample[labels == c]
        distances = (((features[members] - centers[c]) / scale) ** 2).sum(1)
        goal_rows[c] = members[int(distances.argmin())]
    return Codebook(
        centers=centers,
        goal_features=features[goal_rows].astype(np.float32),
        goal_observations=data.observations[goal_rows],
        goal_rows=goal_rows,
        cluster_sizes=np.bincount(labels, minlength=n_clusters),
        dataset_fingerprint=data.fingerprint,
        domain=domain,
        feature_scale=scale,
        settings={"n_clusters": n_clusters, "max_samples": max_samples, "seed": seed, "n_init": n_init,
                  "standardize": standardize},
    )


def sample_states(chunks: EpisodeChunks, memory_rows: int, n: int, seed: int, observation_size: int,
                  domain: str) -> tuple[TrajectoryData, np.ndarray]:
    """About ``n`` states drawn uniformly from a dataset read ``memory_rows`` rows at a time, as a
    :class:`TrajectoryData` of one-row episodes carrying the whole dataset's fingerprint, and their rows in it."""
    rng = np.random.default_rng(seed)
    keep = min(1.0, n / chunks.n_rows)
    observations, rows, offset = [], [], 0

    def pick(chunk: TrajectoryData) -> None:  # one pass over the file gives the sample and the fingerprint
        nonlocal offset
        chunk.check_observation_size(observation_size, f"the {domain} environment")
        picked = np.flatnonzero(rng.random(len(chunk.observations)) < keep)
        observations.append(chunk.observations[picked])
        rows.append(picked + offset)
        offset += len(chunk.observations)

    fingerprint = chunks.fingerprint(memory_rows, visit=pick)
    observations = np.concatenate(observations)
    sample = TrajectoryData(observations=observations, actions=np.zeros(len(observations), np.int64),
                            has_action=np.zeros(len(observations), bool), episode_index=np.arange(len(observations)),
                            episode_end=np.arange(len(observations)), episode_seeds=np.full(len(observations), -1),
                            fingerprint=fingerprint)
    return sample, np.concatenate(rows)


def cluster(config: ClusterConfig) -> dict:
    out = Path(config.run_dir) / "codebook"
    previous = prepare_stage(out, config, config.force, config.resume, "cluster",
                             dataset_inputs(config))
    if previous is not None:
        return previous
    domain = domain_of(config)
    source = run_dataset_path(config.run_dir, config.dataset or None)
    chunks = EpisodeChunks.open(source, domain.dataset_observation_key)
    size = domain.make_env(None).observation_space.shape[0]
    if streamed(config.memory_rows, chunks.n_rows):
        data, rows = sample_states(chunks, config.memory_rows, config.max_samples, config.seed, size, domain.name)
    else:
        data, rows = chunks.load(np.arange(chunks.n_episodes)), None
        data.check_observation_size(size, f"the {domain.name} environment")
    features = domain.goal_features(data.observations)
    logger.info(f"[cluster] K-means with {config.n_clusters} clusters on {min(config.max_samples, len(features))} "
          f"of {chunks.n_rows} states ({features.shape[1]}-d goal features)")
    codebook = build_codebook(data, features, config.n_clusters, config.max_samples, config.seed,
                              config.n_init, domain.name, standardize=domain.standardize_goal_features)
    if rows is not None:  # the goals' rows in the whole dataset, not in the sample
        codebook.goal_rows = rows[codebook.goal_rows]
    codebook.save(out / "codebook.npz")
    from ptgm.plots import plot_codebook_grid, plot_goal_projection

    plot_codebook_grid(domain, codebook, out / "goals.png")
    plot_goal_projection(features, codebook, out / "projection.png", seed=config.seed)
    summary = {"n_clusters": codebook.n_goals, "fingerprint": codebook.fingerprint,
               "dataset_fingerprint": codebook.dataset_fingerprint,
               "smallest_cluster": int(codebook.cluster_sizes.min()),
               "largest_cluster": int(codebook.cluster_sizes.max()),
               "pictures": [str(out / "goals.png"), str(out / "projection.png")]}
    mark_stage_done(out, config, summary)
    logger.info(f"[cluster] saved {out / 'codebook.npz'} and pictures {out / 'goals.png'}, {out / 'projection.png'}")
    return summary
