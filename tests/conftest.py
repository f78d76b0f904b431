"""Shared fixtures: one tiny but real pipeline (Crafter play data → every pre-trained piece)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ptgm.clustering.codebook import ClusterConfig, cluster
from ptgm.data.generate import GenerateConfig, generate
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.prior.train import PriorConfig, train_prior
from ptgm.utils import log_to_stdout

torch.set_num_threads(1)
log_to_stdout()  # as on the command line: tests read the messages from captured stdout


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run directory with a ~3k-transition dataset, low-level policy, 8-goal codebook and prior."""
    run = tmp_path_factory.mktemp("run")
    common = dict(run_dir=str(run))
    generate(GenerateConfig(transitions=3000, shard_transitions=1500, workers=1, **common))
    pretrain(PretrainConfig(steps=150, eval_every=50, batch_size=128, hidden=(64, 64), goal_trials=3, **common))
    cluster(ClusterConfig(n_clusters=8, n_init=1, **common))
    train_prior(PriorConfig(steps=100, eval_every=50, batch_size=128, hidden=(32, 32), **common))
    return run
