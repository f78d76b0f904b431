"""The whole pipeline on Franka Kitchen at tiny scale: play data → pre-training → PTGM and flat SAC."""

import json

import numpy as np
import pytest

from ptgm.clustering.codebook import ClusterConfig, cluster
from ptgm.data.generate import GenerateConfig, generate, load_run_dataset
from ptgm.domains import get_domain
from ptgm.domains.kitchen.env import parse_task
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.prior.train import PriorConfig, train_prior
from ptgm.train import TrainConfig, train
from ptgm.utils import PTGMError


@pytest.fixture(scope="module")
def kitchen_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("kitchen")
    common = dict(run_dir=str(run), domain="kitchen")
    generate(GenerateConfig(transitions=1200, shard_transitions=600, workers=1, **common))
    pretrain(PretrainConfig(steps=60, eval_every=30, batch_size=128, hidden=(64, 64), goal_trials=2, **common))
    cluster(ClusterConfig(n_clusters=6, n_init=1, **common))
    train_prior(PriorConfig(steps=60, eval_every=30, batch_size=128, hidden=(32, 32), **common))
    return run


def test_play_data_is_continuous_control_and_reports_subtask_coverage(kitchen_run):
    data = load_run_dataset(kitchen_run, observation_key="observation")
    assert data.observations.shape[1] == 59 and data.actions.shape[1] == 9
    assert np.abs(data.actions[data.has_action]).max() <= 1.0
    coverage = json.loads((kitchen_run / "data" / "coverage.json").read_text())["coverage"]
    assert set(coverage) == set(get_domain("kitchen").achievement_names())
    assert max(coverage.values()) > 0  # the scripted play completes subtasks


def test_ptgm_and_flat_sac_train_and_report(kitchen_run):
    common = dict(run_dir=str(kitchen_run), domain="kitchen", env_steps=600, n_envs=2, eval_episodes=1,
                  hidden=(32, 32))
    ptgm = train(TrainConfig(method="ptgm", n_steps=8, **common))
    ptgm_sac = train(TrainConfig(method="ptgm-sac", sac_learning_starts=100, **common))
    sac = train(TrainConfig(method="sac", sac_learning_starts=100, **common))
    task_subtasks = set(parse_task("mkbl"))
    for summary in (ptgm, ptgm_sac, sac):
        assert summary["env_steps"] >= 600 and 0.0 <= summary["eval_success_rate"] <= 1.0
        # The score is the number of the task's subtasks completed, so their rates add up to the mean return.
        for evaluation in ("eval", "eval_most_likely"):  # sampled actions, and each policy's most likely one
            rates = summary[f"{evaluation}_subtask_rates"]
            assert sum(rates.get(name, 0.0) for name in task_subtasks) == pytest.approx(
                summary[f"{evaluation}_mean_return"])


def test_a_crafter_run_directory_is_not_reused_for_kitchen(kitchen_run):
    with pytest.raises(PTGMError, match="holds a kitchen run, not crafter"):
        generate(GenerateConfig(run_dir=str(kitchen_run), domain="crafter", transitions=100))
