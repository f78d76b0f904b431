import numpy as np
import pytest

from ptgm.clustering.codebook import Codebook, build_codebook
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import load_run_dataset
from ptgm.domains import get_domain
from ptgm.utils import PTGMError


def _features(run):
    domain = get_domain("crafter")
    data = load_run_dataset(run)
    return data, domain.goal_features(data.observations)


def test_clustering_is_deterministic_for_a_seed(tiny_run):
    data, feats = _features(tiny_run)
    a = build_codebook(data, feats, n_clusters=8, max_samples=2000, seed=3, n_init=1, domain="crafter")
    b = build_codebook(data, feats, n_clusters=8, max_samples=2000, seed=3, n_init=1, domain="crafter")
    assert np.array_equal(a.centers, b.centers) and np.array_equal(a.goal_rows, b.goal_rows)
    c = build_codebook(data, feats, n_clusters=8, max_samples=2000, seed=4, n_init=1, domain="crafter")
    assert not np.array_equal(a.goal_rows, c.goal_rows)


def test_goal_is_the_state_nearest_its_centre_within_its_cluster(tiny_run):
    data, feats = _features(tiny_run)
    book = build_codebook(data, feats, n_clusters=8, max_samples=len(feats), seed=0, n_init=1, domain="crafter")
    labels = book.assign(feats)
    for c in range(book.n_goals):
        members = np.flatnonzero(labels == c)
        d = ((feats[members] - book.centers[c]) ** 2).sum(1)
        assert np.isclose(((feats[book.goal_rows[c]] - book.centers[c]) ** 2).sum(), d.min(), atol=1e-5)
    assert np.array_equal(book.goal_observations, data.observations[book.goal_rows])
    assert book.cluster_sizes.sum() == len(feats)


def test_standardised_clustering_splits_on_small_scale_features(tiny_run, tmp_path):
    data, _ = _features(tiny_run)
    rng = np.random.default_rng(0)
    n = 2000
    # Feature 0 is noise in the hundreds; feature 1 takes two values 0.1 apart (what K-means should find).
    wide, fine = rng.normal(0, 100, n), rng.integers(0, 2, n) * 0.1
    feats = np.stack([wide, fine], 1).astype(np.float32)
    plain = build_codebook(data, feats, n_clusters=2, max_samples=n, seed=0, n_init=3, domain="x")
    scaled = build_codebook(data, feats, n_clusters=2, max_samples=n, seed=0, n_init=3, domain="x",
                            standardize=True)

    def purity(book):
        labels = book.assign(feats)
        return max(np.mean(labels == (fine > 0.05)), np.mean(labels != (fine > 0.05)))

    assert purity(plain) < 0.7 and purity(scaled) > 0.99
    np.testing.assert_allclose(scaled.feature_scale, [wide.std(), 0.05], rtol=1e-3)  # floored at 0.05
    np.testing.assert_array_equal(plain.feature_scale, [1.0, 1.0])
    scaled.save(tmp_path / "cb.npz")
    np.testing.assert_array_equal(Codebook.load(tmp_path / "cb.npz").assign(feats), scaled.assign(feats))


def test_codebook_round_trip_and_dataset_check(tiny_run, tmp_path):
    book = Codebook.load(tiny_run / "codebook" / "codebook.npz")
    book.save(tmp_path / "cb.npz")
    again = Codebook.load(tmp_path / "cb.npz")
    assert np.array_equal(again.centers, book.centers) and again.fingerprint == book.fingerprint
    with pytest.raises(PTGMError, match="different|from dataset"):
        book.check_matches("0123456789abcdef01234567", "the prior's training data")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(PTGMError, match="corrupt"):
        Codebook.load(tmp_path / "bad.npz")


def test_too_many_clusters_is_a_clear_error():
    data = TrajectoryData.from_episodes([np.zeros((4, 3), np.float32)], [np.zeros(3)])
    with pytest.raises(PTGMError, match="clusters"):
        build_codebook(data, np.zeros((4, 3), np.float32), n_clusters=10, max_samples=10, seed=0, n_init=1,
                       domain="x")
