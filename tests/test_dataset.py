import numpy as np
import pytest

from ptgm.data.dataset import TrajectoryData, load_minari, write_minari
from ptgm.domains.crafter.env import CrafterEnv
from ptgm.utils import PTGMError


def _episodes(n_eps=3, length=6, seed=0):
    env = CrafterEnv(None)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_eps):
        obs, _ = env.reset(seed=seed * 100 + i)
        observations, actions = [obs], []
        for _ in range(length):
            a = int(rng.integers(env.action_space.n))
            obs, *_ = env.step(a)
            observations.append(obs)
            actions.append(a)
        out.append({"observations": np.stack(observations), "actions": np.array(actions), "rewards": np.zeros(length),
                    "terminations": np.zeros(length, bool), "truncations": np.eye(length, dtype=bool)[-1],
                    "seed": seed * 100 + i})
    return env, out


def test_minari_round_trip(tmp_path):
    env, episodes = _episodes()
    path = write_minari(tmp_path, "play-v0", episodes, env.observation_space, env.action_space)
    data = load_minari(path)
    assert data.n_episodes == 3 and data.n_transitions == 18
    assert np.array_equal(data.observations[:7], episodes[0]["observations"])
    assert np.array_equal(data.actions[7:13], episodes[1]["actions"])
    assert list(data.episode_seeds) == [0, 1, 2]
    assert not (tmp_path / "unfinished-play-v0").exists()
    # The same content gives the same fingerprint; different content a different one.
    assert load_minari(path).fingerprint == data.fingerprint
    _, other = _episodes(seed=1)
    path2 = write_minari(tmp_path, "other-v0", other, env.observation_space, env.action_space)
    assert load_minari(path2).fingerprint != data.fingerprint


def test_missing_dataset_names_the_fix(tmp_path):
    with pytest.raises(PTGMError, match="ptgm generate"):
        load_minari(tmp_path / "nothing-here")


def test_corrupt_dataset_names_the_fix(tmp_path):
    env, episodes = _episodes(n_eps=1)
    path = write_minari(tmp_path, "play-v0", episodes, env.observation_space, env.action_space)
    hdf5 = path / "data" / "main_data.hdf5"
    hdf5.write_bytes(hdf5.read_bytes()[:200])
    with pytest.raises(PTGMError, match="corrupt"):
        load_minari(path)


def test_observation_size_mismatch_is_caught():
    data = TrajectoryData.from_episodes([np.zeros((3, 60), np.float32)], [np.zeros((2, 9), np.float32)])
    with pytest.raises(PTGMError, match="60 values"):
        data.check_observation_size(1156, "the crafter environment")


def test_malformed_episode_and_nans_rejected():
    with pytest.raises(PTGMError, match="one more"):
        TrajectoryData.from_episodes([np.zeros((3, 4))], [np.zeros(3)])
    bad = np.zeros((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(PTGMError, match="NaN"):
        TrajectoryData.from_episodes([bad], [np.zeros(2)])
