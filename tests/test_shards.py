"""Datasets larger than memory: the pre-training stages read the Minari file a chunk of episodes at a time."""

from __future__ import annotations

import shutil

import numpy as np

from ptgm.clustering.codebook import ClusterConfig, Codebook, cluster
from ptgm.data.generate import dataset_path, load_run_dataset
from ptgm.data.shards import EpisodeChunks
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.prior.train import PriorConfig, train_prior


def test_chunks_are_whole_episodes_within_the_budget_and_hash_as_the_whole(tiny_run):
    whole = load_run_dataset(tiny_run)
    chunks = EpisodeChunks.open(dataset_path(tiny_run))
    assert chunks.n_episodes == whole.n_episodes and chunks.n_rows == len(whole.observations)
    budget = 800
    groups = chunks.groups(np.arange(chunks.n_episodes), budget)
    assert np.array_equal(np.concatenate(groups), np.arange(chunks.n_episodes))
    assert all(chunks.lengths[g].sum() <= budget or len(g) == 1 for g in groups) and len(groups) > 2
    part = chunks.load(groups[1])
    start = int(chunks.lengths[groups[0]].sum())
    assert np.array_equal(part.observations, whole.observations[start:start + len(part.observations)])
    assert chunks.fingerprint(budget) == whole.fingerprint


def test_pretraining_stages_stream_a_dataset_larger_than_their_memory(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "data", run / "data")
    budget = 800
    loaded = []
    original = EpisodeChunks.load

    def recording_load(self, episodes):
        loaded.append(int(self.lengths[episodes].sum()))
        return original(self, episodes)

    monkeypatch.setattr(EpisodeChunks, "load", recording_load)
    common = dict(run_dir=str(run), memory_rows=budget)
    low = pretrain(PretrainConfig(steps=60, eval_every=30, batch_size=64, hidden=(32,), goal_trials=2, **common))
    lengths = EpisodeChunks.open(dataset_path(run)).lengths
    assert max(loaded) <= max(budget, lengths.max())  # never the whole dataset at once
    assert len(loaded) > 3 and low["train_transitions"] > budget
    cluster(ClusterConfig(n_clusters=4, n_init=1, max_samples=500, **common))
    codebook = Codebook.load(run / "codebook" / "codebook.npz")
    assert codebook.dataset_fingerprint == load_run_dataset(tiny_run).fingerprint
    whole = load_run_dataset(tiny_run)
    goal_states = whole.observations[codebook.goal_rows]  # the goals' rows point into the whole dataset
    assert np.array_equal(goal_states, codebook.goal_observations)
    prior = train_prior(PriorConfig(steps=40, eval_every=20, batch_size=64, hidden=(16,), **common))
    assert max(loaded) <= max(budget, lengths.max())
    assert 0 <= prior["val_accuracy"] <= 1 and prior["n_goals"] == 4
