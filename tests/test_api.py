"""The Python API: pieces, the PTGM agent's learn / save / load / predict, and the one-file round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import ptgm
from ptgm.utils import PTGMError


def crafter_wood():
    return gym.make("ptgm/Crafter-v0", task="collect_wood")


def observations(n: int = 12, seed: int = 5) -> np.ndarray:
    """Raw task observations from a few random steps of one Crafter episode."""
    env = crafter_wood()
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    rows = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(env.action_space.sample())
        rows.append(obs)
    return np.stack(rows)


def act(agent: ptgm.Agent, obs: np.ndarray, seed: int = 0) -> tuple[list, list]:
    """The agent's actions and goals along ``obs`` (one episode), the low level's sampling seeded."""
    torch.manual_seed(seed)
    agent.reset()
    actions, goals = [], []
    for row in obs:
        action, info = agent.predict(row, deterministic=True)
        actions.append(int(action))
        goals.append(info["goal"])
    return actions, goals


def test_pretrained_pieces_load_together(tiny_run):
    pieces = ptgm.Pretrained.load(tiny_run)
    assert pieces.domain == "crafter" and pieces.n_goals == 8 == pieces.prior.n_goals
    assert pieces.lowlevel["k_max"] == 20 and pieces.codebook.dataset_fingerprint == pieces.lowlevel["fingerprint"]
    again = ptgm.Pretrained.from_bytes(pieces.to_bytes())
    obs = torch.as_tensor(observations(4), dtype=torch.float32)
    assert torch.equal(again.prior(obs), pieces.prior(obs))
    np.testing.assert_array_equal(again.codebook.goal_features, pieces.codebook.goal_features)


def test_ptgm_learns_saves_and_acts_the_same_in_a_fresh_process(tiny_run, tmp_path):
    pieces = ptgm.Pretrained.load(tiny_run)
    agent = ptgm.PTGM(crafter_wood, pieces, k=5, kl_coef=0.01, n_envs=2, n_steps=16, batch_size=16, seed=1)
    assert agent.config.task == "collect_wood" and agent.config.method == "ptgm"
    agent.learn(total_env_steps=300)
    assert 300 <= agent.env_steps < 300 + 2 * 5 * 16 + 10  # stops at the env-step budget, not SB3's cap
    assert agent.model.num_timesteps > 0
    obs = observations()
    actions, goals = act(agent, obs)
    # The goal holds for k = 5 steps and then the high-level policy picks again.
    assert all(g in range(8) for g in goals)
    _, info = agent.predict(obs[0], episode_start=True)
    assert info["goal_step"] == 1 and info["caption"].startswith(f"goal {info['goal']}")
    path = tmp_path / "wood.zip"
    agent.save(path)
    np.save(tmp_path / "obs.npy", obs)
    script = f"""
import json, numpy as np, torch, ptgm
agent = ptgm.PTGM.load({str(path)!r})
obs = np.load({str(tmp_path / 'obs.npy')!r})
torch.manual_seed(0)
actions, goals = [], []
for row in obs:
    action, info = agent.predict(row, deterministic=True)
    actions.append(int(action)); goals.append(info["goal"])
print(json.dumps({{"actions": actions, "goals": goals, "env_steps": agent.env_steps, "k": agent.config.k}}))
"""
    # A fresh process, started elsewhere: the saved file alone must be enough.
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"actions": actions, "goals": goals, "env_steps": agent.env_steps, "k": 5}


def test_goals_are_held_for_k_steps(tiny_run):
    pieces = ptgm.Pretrained.load(tiny_run)
    agent = ptgm.PTGM(crafter_wood(), pieces, k=3, n_steps=8, batch_size=8)
    assert agent.config.n_envs == 1  # one environment instance trains alone
    steps = [agent.predict(row)[1]["goal_step"] for row in observations(7)]
    assert steps == [1, 2, 3, 1, 2, 3, 1]


def test_a_loaded_agent_goes_on_learning(tiny_run, tmp_path):
    pieces = ptgm.Pretrained.load(tiny_run)
    agent = ptgm.PTGM(crafter_wood, pieces, learner="sac", k=5, n_envs=1, sac_learning_starts=50)
    assert agent.config.method == "ptgm-sac"
    agent.learn(100)
    agent.save(tmp_path / "sac.zip")
    again = ptgm.Agent.load(tmp_path / "sac.zip", env=crafter_wood)
    assert again.env_steps == agent.env_steps and again.method.name == "ptgm-sac"
    again.learn(200)
    assert again.env_steps >= 200


def test_flat_agents_share_the_api(tmp_path):
    config = ptgm.TrainConfig(task="collect_wood", method="ppo", n_envs=1, n_steps=32, batch_size=32, seed=2)
    agent = ptgm.Agent("ppo", config)
    agent.learn(64)
    obs = observations(3)
    action, info = agent.predict(obs[0], deterministic=True)
    assert 0 <= int(action) < 17 and info["goal"] == -1
    agent.save(tmp_path / "ppo.zip")
    again = ptgm.Agent.load(tmp_path / "ppo.zip")
    assert [int(again.predict(o, deterministic=True)[0]) for o in obs] == [
        int(agent.predict(o, deterministic=True)[0]) for o in obs]


def test_api_errors_are_clear(tiny_run, tmp_path):
    pieces = ptgm.Pretrained.load(tiny_run)
    with pytest.raises(PTGMError, match="learner"):
        ptgm.PTGM(crafter_wood, pieces, learner="dqn")
    with pytest.raises(PTGMError, match="function that makes one"):
        ptgm.PTGM(crafter_wood(), pieces, n_envs=2)
    with pytest.raises(PTGMError, match="No saved agent"):
        ptgm.Agent.load(tmp_path / "missing.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(PTGMError, match="not a saved ptgm agent"):
        ptgm.Agent.load(tmp_path / "bad.zip")
    with pytest.raises(PTGMError, match="Unknown method"):
        ptgm.get_method("dqn")
    with pytest.raises(PTGMError, match="at least 1"):
        ptgm.PTGM(crafter_wood, pieces, k=0)


def test_cli_runs_are_agents_and_evaluate_records_a_video(tiny_run, tmp_path):
    import imageio.v3 as iio

    from ptgm.cli import main

    run = tmp_path / "run"
    for stage in ("data", "lowlevel", "codebook", "prior"):
        (run / stage).parent.mkdir(parents=True, exist_ok=True)
        (run / stage).symlink_to(tiny_run / stage, target_is_directory=True)
    assert main(["train", "--run-dir", str(run), "--env-steps", "200", "--eval-episodes", "1", "--n-envs", "1",
                 "--k", "5", "--n-steps", "16", "--batch-size", "16"]) == 0
    agent = ptgm.Agent.load(run / "rl/collect_wood/ptgm-seed0/agent.zip")  # `ptgm train` saves the agent too
    assert agent.env_steps >= 200 and agent.config.k == 5
    video = tmp_path / "wood.gif"
    assert main(["evaluate", "--run-dir", str(run), "--episodes", "1", "--video", str(video),
                 "--video-max-steps", "12"]) == 0
    frames = iio.imread(video, index=None)
    assert frames.shape[0] == 13 and frames.shape[1] >= 256  # 12 steps and the last state, upscaled


def test_pretraining_is_callable_from_python(tmp_path):
    pieces = ptgm.Pretrained.build(
        tmp_path / "run", "crafter",
        generate=ptgm.GenerateConfig(run_dir=str(tmp_path / "run"), transitions=1500, shard_transitions=1500,
                                     workers=1),
        pretrain=ptgm.PretrainConfig(run_dir=str(tmp_path / "run"), steps=50, eval_every=50, batch_size=64,
                                     hidden=(32,), goal_trials=1, k_max=7),
        cluster=ptgm.ClusterConfig(run_dir=str(tmp_path / "run"), n_clusters=4, n_init=1),
        prior=ptgm.PriorConfig(run_dir=str(tmp_path / "run"), steps=50, eval_every=50, batch_size=64, hidden=(16,)))
    assert pieces.n_goals == 4 and pieces.lowlevel["k_max"] == 7
    # The prior learned goals as far ahead as the low-level policy does (not the old fixed 20).
    prior_config = json.loads((tmp_path / "run/prior/config.json").read_text())
    assert (prior_config["k_min"], prior_config["k_max"]) == (1, 7)


def test_an_agent_trains_in_any_gymnasium_environment(tmp_path):
    # CartPole reports no success flag: its episodes are still recorded (success read from the return).
    agent = ptgm.Agent("ppo", ptgm.TrainConfig(n_envs=2, n_steps=32, batch_size=32), env="CartPole-v1")
    agent.learn(256)
    assert agent.env_steps >= 256
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    action, info = agent.predict(obs, deterministic=True)
    assert int(action) in (0, 1) and info["goal"] == -1
