"""`--domain minari`: any Minari dataset, no code, end to end on a dataset recorded here from PointMaze."""

from __future__ import annotations

import json
import os
import shutil

import gymnasium as gym
import numpy as np
import pytest

from ptgm.cli import main

os.environ.setdefault("MUJOCO_GL", "egl")


def record_pointmaze(root, episodes: int = 40, seed: int = 0) -> str:
    """A Minari dataset of PointMaze_UMaze-v3 (dictionary observations) played by a noisy P-controller that
    heads for each episode's goal; returns its path."""
    import gymnasium_robotics
    import minari
    from minari.data_collector import EpisodeBuffer

    gym.register_envs(gymnasium_robotics)
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=60, continuing_task=False)
    rng = np.random.default_rng(seed)
    buffers = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        steps, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            toward = 2.0 * (obs["desired_goal"] - obs["achieved_goal"]) - 0.5 * obs["observation"][2:]
            action = np.clip(toward + 0.5 * rng.normal(size=2), -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            steps.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
        buffers.append(EpisodeBuffer(
            id=episode, seed=seed + episode, observations={k: np.stack([o[k] for o in steps]) for k in steps[0]},
            actions=np.stack(actions), rewards=np.asarray(rewards), terminations=np.asarray(terms),
            truncations=np.asarray(truncs), infos={}))
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        minari.create_dataset_from_buffers(dataset_id="pointmaze/play-v0", buffer=buffers, env=env,
                                           algorithm_name="noisy P-controller", author="ptgm tests",
                                           data_format="hdf5")
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH")
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    return str(root / "pointmaze" / "play-v0")


@pytest.fixture(scope="module")
def pointmaze(tmp_path_factory) -> str:
    return record_pointmaze(tmp_path_factory.mktemp("minari"))


def test_a_minari_dataset_trains_ptgm_end_to_end(pointmaze, tmp_path):
    run = str(tmp_path / "run")
    common = ["--domain", "minari", "--dataset", pointmaze, "--goal-keys", "achieved_goal", "--run-dir", run]
    assert main(["pretrain", *common, "--steps", "200", "--eval-every", "100", "--hidden", "64", "64",
                 "--goal-trials", "3"]) == 0
    assert main(["cluster", *common, "--n-clusters", "6", "--n-init", "1"]) == 0
    assert main(["prior", *common, "--steps", "100", "--eval-every", "50", "--hidden", "32", "32"]) == 0
    codebook = np.load(f"{run}/codebook/codebook.npz")
    assert codebook["goal_features"].shape == (6, 2)  # the achieved_goal entries: a position in the maze
    assert codebook["goal_observations"].shape == (6, 8)  # the flattened observation
    assert (tmp_path / "run/codebook/goals.png").stat().st_size > 0
    assert main(["train", *common, "--method", "ptgm", "--env-steps", "400", "--n-envs", "2", "--eval-episodes",
                 "3", "--k", "5", "--n-steps", "16", "--batch-size", "16"]) == 0
    done = json.loads((tmp_path / "run/rl/PointMaze_UMaze-v3/ptgm-seed0/DONE.json").read_text())
    assert done["summary"]["env_steps"] >= 400 and done["summary"]["eval_episodes"] == 3
    assert done["config"]["task"] == "PointMaze_UMaze-v3" and done["config"]["goal_keys"] == ["achieved_goal"]
    # The flat baseline of a continuous-action dataset is SAC, on the same environment.
    assert main(["train", *common, "--method", "sac", "--env-steps", "300", "--eval-episodes", "2",
                 "--sac-learning-starts", "100", "--n-envs", "1"]) == 0
    assert main(["evaluate", *common, "--method", "ptgm", "--episodes", "2"]) == 0


def test_minari_domain_errors_name_the_fix(pointmaze, tmp_path, capsys):
    run = ["--run-dir", str(tmp_path / "run")]
    assert main(["pretrain", "--domain", "minari", "--dataset", pointmaze, "--goal-keys", "nope", *run]) == 2
    err = capsys.readouterr().err
    assert "Unknown goal key(s) nope" in err and "achieved_goal, desired_goal, observation" in err
    assert main(["generate", "--domain", "minari", "--dataset", pointmaze, *run]) == 2
    assert "plays nothing" in capsys.readouterr().err
    assert main(["generate", "--domain", "crafter", "--dataset", pointmaze, *run]) == 2
    assert "records new play" in capsys.readouterr().err
    assert main(["pretrain", "--domain", "minari", *run]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["pretrain", "--domain", "crafter", "--goal-keys", "observation", *run]) == 2
    assert "Leave --goal-keys unset" in capsys.readouterr().err
    # A dataset recorded in an environment this machine does not have.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(pointmaze, elsewhere)
    metadata = json.loads((elsewhere / "data/metadata.json").read_text())
    metadata["env_spec"] = metadata["env_spec"].replace("gymnasium_robotics.envs.maze.point_maze",
                                                        "no_such_package.envs")
    (elsewhere / "data/metadata.json").write_text(json.dumps(metadata))
    assert main(["train", "--domain", "minari", "--dataset", str(elsewhere), "--method", "sac", *run]) == 2
    err = capsys.readouterr().err
    assert "cannot be made here" in err and "Install the package" in err
