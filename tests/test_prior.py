import numpy as np
import pytest

from ptgm.clustering.codebook import Codebook
from ptgm.data.generate import load_run_dataset
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.domains import get_domain
from ptgm.prior.model import GoalPrior
from ptgm.prior.train import PriorConfig, prior_labels, train_prior
from ptgm.utils import PTGMError


def test_prior_labels_are_the_clusters_of_the_hindsight_goals(tiny_run):
    domain = get_domain("crafter")
    data = load_run_dataset(tiny_run)
    book = Codebook.load(tiny_run / "codebook" / "codebook.npz")
    feats = domain.goal_features(data.observations)
    row_clusters = book.assign(feats)
    rows = data.action_rows()[:500]
    labels = prior_labels(data, row_clusters, rows, np.random.default_rng(7), 1, 20)
    goals = hindsight_goal_rows(rows, data.episode_end, np.random.default_rng(7), 1, 20)
    # Same draw of goals: each label is the nearest centre of that goal's features.
    nearest = ((feats[goals][:, None, :] - book.centers[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(labels, nearest)


def test_trained_prior_outputs_a_distribution_over_goals(tiny_run):
    prior, ckpt = GoalPrior.load(tiny_run / "prior" / "prior.pt")
    data = load_run_dataset(tiny_run)
    import torch
    probs = torch.softmax(prior(torch.from_numpy(data.observations[:10])), -1)
    assert probs.shape == (10, 8) and torch.allclose(probs.sum(-1), torch.ones(10))
    assert ckpt["fingerprint"] == data.fingerprint


def test_prior_refuses_a_codebook_from_another_dataset(tiny_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "data", run / "data")
    book = Codebook.load(tiny_run / "codebook" / "codebook.npz")
    book.dataset_fingerprint = "ffffffffffffffffffffffff"
    book.save(run / "codebook" / "codebook.npz")
    with pytest.raises(PTGMError, match="Rebuild the codebook"):
        train_prior(PriorConfig(run_dir=str(run), steps=5))
