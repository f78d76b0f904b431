import numpy as np
import pytest

from ptgm.data.dataset import TrajectoryData
from ptgm.data.relabel import hindsight_goal_rows


def _data(lengths):
    obs = [np.full((n + 1, 2), i, np.uint8) for i, n in enumerate(lengths)]
    act = [np.arange(n) for n in lengths]
    return TrajectoryData.from_episodes(obs, act)


def test_layout_of_rows():
    data = _data([3, 2])
    assert data.observations.shape == (7, 2)
    assert list(data.has_action) == [True, True, True, False, True, True, False]
    assert list(data.episode_end) == [3, 3, 3, 3, 6, 6, 6]
    assert data.n_transitions == 5 and data.n_episodes == 2


def test_goal_is_exactly_k_ahead_or_the_episode_end():
    data = _data([10, 4])
    rows = data.action_rows()
    rng = np.random.default_rng(0)
    goals = hindsight_goal_rows(rows, data.episode_end, rng, k_min=3, k_max=3)
    expected = np.minimum(rows + 3, data.episode_end[rows])
    assert np.array_equal(goals, expected)
    # row 0 -> 3; row 8 -> 10 (end of first episode); second episode rows 11..14 end at 15
    assert goals[0] == 3 and goals[8] == 10 and goals[-1] == 15


def test_goals_stay_in_the_episode_and_cover_the_range():
    data = _data([50, 30, 5])
    rows = np.repeat(data.action_rows(), 20)
    goals = hindsight_goal_rows(rows, data.episode_end, np.random.default_rng(1), k_min=2, k_max=6)
    assert (data.episode_index[goals] == data.episode_index[rows]).all()
    assert (goals > rows).all()
    offsets = (goals - rows)[goals < data.episode_end[rows]]
    assert offsets.min() == 2 and offsets.max() == 6


def test_bad_horizons_rejected():
    data = _data([5])
    with pytest.raises(ValueError):
        hindsight_goal_rows(data.action_rows(), data.episode_end, np.random.default_rng(0), 0, 3)
    with pytest.raises(ValueError):
        hindsight_goal_rows(data.action_rows(), data.episode_end, np.random.default_rng(0), 4, 3)
