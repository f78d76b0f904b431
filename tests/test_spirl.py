"""SPiRL baseline: skill VAE + skill prior pre-training, the skill environment, and SAC with the prior KL."""

import csv
import json
import re
import shutil

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import ptgm.train as hrl_train
from ptgm.baselines.spirl import (
    SkillEnv,
    SkillModel,
    SpirlConfig,
    SpirlSAC,
    action_windows,
    load_skills,
    skill_window_starts,
    train_spirl,
)
from ptgm.cli import main
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import GenerateConfig, generate
from ptgm.domains import get_domain
from ptgm.hrl.wrapper import ScaledObservation
from ptgm.train import TrainConfig, train
from ptgm.utils import PTGMError

SMALL = dict(steps=300, eval_every=100, checkpoint_every=100, batch_size=64, hidden=(64, 64),
             prior_hidden=(32, 32))


@pytest.fixture(scope="module")
def kitchen_skills(tmp_path_factory):
    """A kitchen run directory with ~1.2k play transitions and finished SPiRL skills."""
    run = tmp_path_factory.mktemp("spirl")
    generate(GenerateConfig(run_dir=str(run), domain="kitchen", transitions=1200, shard_transitions=600, workers=1))
    summary = train_spirl(SpirlConfig(run_dir=str(run), domain="kitchen", **SMALL))
    return run, summary


def test_windows_never_cross_an_episode_end():
    lengths = [3, 12, 10, 25]  # actions per episode
    data = TrajectoryData.from_episodes([np.arange(n + 1, dtype=np.float32)[:, None] for n in lengths],
                                        [np.full((n, 1), i, np.float32) for i, n in enumerate(lengths)])
    starts = skill_window_starts(data, 10)
    assert len(starts) == sum(max(0, n - 10 + 1) for n in lengths)  # every fitting window, no other
    windows = action_windows(data, starts, 10)
    rows = starts[:, None] + np.arange(10)
    assert data.has_action[rows].all()
    assert (data.episode_index[rows] == data.episode_index[starts][:, None]).all()
    assert (windows[..., 0] == data.episode_index[starts][:, None]).all()  # actions all of the start's episode
    only_last = skill_window_starts(data, 10, episodes=np.array([3]))
    assert set(data.episode_index[only_last]) == {3} and len(only_last) == 16


def test_vae_learns_to_reconstruct_and_the_stage_is_reused(kitchen_skills, capsys):
    run, summary = kitchen_skills
    with open(run / "spirl" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [100, 200, 300]
    assert float(rows[-1]["val_recon_mse"]) < float(rows[0]["val_recon_mse"])
    # Far better than decoding every action as the dataset mean.
    assert summary["val_recon_mse"] < 0.5 * summary["mean_action_mse"]
    assert np.isfinite(summary["val_prior_kl"]) and summary["val_prior_kl"] > 0
    for name in ("skills.pt", "config.json", "DONE.json"):
        assert (run / "spirl" / name).exists()
    assert (run / "spirl" / "tb").is_dir()
    assert main(["spirl", "--run-dir", str(run), "--domain", "kitchen", "--steps", "300", "--eval-every", "100",
                 "--checkpoint-every", "100", "--batch-size", "64", "--hidden", "64", "64",
                 "--prior-hidden", "32", "32"]) == 0
    assert "already finished" in capsys.readouterr().out
    skills = load_skills(run, "kitchen", check_dataset=True)
    assert (skills.horizon, skills.latent_dim, skills.action_dim) == (10, 10, 9)
    assert not any(p.requires_grad for p in skills.parameters())


def test_an_interrupted_stage_resumes(kitchen_skills, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(kitchen_skills[0] / "data", run / "data")
    calls = {"n": 0}
    losses = SkillModel.losses

    def interrupt_after_150(self, *args):
        calls["n"] += 1
        if calls["n"] > 150 and self.training:
            raise KeyboardInterrupt
        return losses(self, *args)

    monkeypatch.setattr(SkillModel, "losses", interrupt_after_150)
    config = dict(run_dir=str(run), domain="kitchen", **SMALL)
    with pytest.raises(KeyboardInterrupt):
        train_spirl(SpirlConfig(**config))
    assert (run / "spirl" / "checkpoint.pt").exists() and not (run / "spirl" / "DONE.json").exists()
    monkeypatch.setattr(SkillModel, "losses", losses)
    with pytest.raises(PTGMError, match="--resume"):
        train_spirl(SpirlConfig(**config))
    summary = train_spirl(SpirlConfig(resume=True, **config))
    assert "resuming from step 100" in capsys.readouterr().out
    assert summary["val_recon_mse"] < summary["mean_action_mse"]
    with open(run / "spirl" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [100, 200, 300]


def test_skill_env_runs_the_decoded_actions_open_loop(kitchen_skills):
    skills = load_skills(kitchen_skills[0], "kitchen")
    executed = []
    task_env = get_domain("kitchen").make_env("mkbl", max_steps=15)
    step = task_env.step
    task_env.step = lambda a: (executed.append(np.array(a)), step(a))[1]
    env = SkillEnv(task_env, skills)
    assert env.action_space.shape == (10,) and env.action_space.high[0] == 1.0
    env.reset(seed=0)
    z = np.linspace(-3, 3, 10).astype(np.float32)  # SAC's squashed action tanh(z) stands for the latent z
    obs, reward, terminated, truncated, info = env.step(np.tanh(z))
    assert info["env_steps"] == 10 and len(executed) == 10 and obs.shape == (59,)
    assert isinstance(reward, float) and not (terminated or truncated)
    with torch.no_grad():
        decoded = skills.decode(torch.as_tensor(z)[None])[0].clamp(-1, 1).numpy()
    np.testing.assert_allclose(np.stack(executed), decoded, atol=1e-4)
    assert np.isfinite(env.decode(np.ones(10))).all()  # the box edge is a large but finite latent
    _, _, _, truncated, info = env.step(np.tanh(z))  # the 15-step limit ends the episode mid-skill
    assert truncated and info["env_steps"] == 5 and len(executed) == 15


def _spirl_sac(skills, **kwargs) -> SpirlSAC:
    env = DummyVecEnv([lambda: ScaledObservation(SkillEnv(get_domain("kitchen").make_env("mkbl"), skills))])
    return SpirlSAC("MlpPolicy", env, skills=skills, learning_starts=10, batch_size=32, seed=0, device="cpu",
                    policy_kwargs=dict(net_arch=dict(pi=list(skills.prior_hidden), qf=[32, 32])), **kwargs)


def test_sac_starts_at_the_prior_and_alpha_tracks_the_target_divergence(kitchen_skills, tmp_path):
    skills = load_skills(kitchen_skills[0], "kitchen")
    model = _spirl_sac(skills)
    obs = torch.as_tensor(model.env.reset())
    mean, log_std, _ = model.actor.get_action_dist_params(obs)
    prior = skills.prior_from_scaled(obs)
    torch.testing.assert_close(mean, prior.loc)  # the actor starts as the prior
    torch.testing.assert_close(log_std.exp(), prior.scale)
    model.learn(20)  # fills the replay buffer (and trains a little)
    for target, direction in ((1e6, -1), (-1e6, 1)):  # divergence far below / above the target
        model.target_divergence = target
        # A fresh optimiser, so Adam's momentum from the other phase does not carry over.
        model.ent_coef_optimizer = torch.optim.Adam([model.log_ent_coef], lr=3e-4)
        alpha = model.log_ent_coef.item()
        model.train(gradient_steps=5, batch_size=32)
        assert np.sign(model.log_ent_coef.item() - alpha) == direction
        assert np.isfinite(model.logger.name_to_value["train/prior_divergence"])
        assert np.isfinite(model.logger.name_to_value["train/critic_loss"])
    # The divergence estimate: exactly 0 at the prior; the analytic KL on average once the policy moves.
    fresh = _spirl_sac(skills)
    many = obs.repeat(20_000, 1)
    _, z, log_pi = fresh.sample_skills(many)
    assert fresh.prior_divergence(many, z, log_pi).abs().max().item() < 1e-3
    with torch.no_grad():  # every mean one prior standard deviation off: KL = 10 · ½ · 1² = 5 nats
        fresh.actor.mu.bias += prior.scale[0]
    _, z, log_pi = fresh.sample_skills(many)
    assert fresh.prior_divergence(many, z, log_pi).mean().item() == pytest.approx(5.0, rel=0.05)

    model.save(tmp_path / "model.zip")
    loaded = SpirlSAC.load(tmp_path / "model.zip", device="cpu", skills=skills)
    assert loaded.log_ent_coef.item() == model.log_ent_coef.item()
    torch.testing.assert_close(loaded.actor.mu.weight, model.actor.mu.weight)
    with pytest.raises(PTGMError, match="skills=load_skills"):
        SpirlSAC.load(tmp_path / "model.zip", device="cpu")
    other = SkillModel(**skills.init_kwargs)
    with pytest.raises(PTGMError, match="--force"):
        SpirlSAC.load(tmp_path / "model.zip", device="cpu", skills=other)


def test_train_spirl_end_to_end_and_resume(kitchen_skills, monkeypatch, capsys):
    run = kitchen_skills[0]
    common = dict(run_dir=str(run), domain="kitchen", method="spirl", n_envs=1, eval_episodes=1,
                  sac_learning_starts=100, checkpoint_every=100)

    def stop(*args, **kwargs):  # interrupted after training, before the final evaluation
        raise KeyboardInterrupt

    monkeypatch.setattr(hrl_train, "evaluate_model", stop)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(env_steps=300, **common))
    out = run / "rl" / "mkbl" / "spirl-seed0"
    checkpoint = json.loads((out / "checkpoint.json").read_text())["env_steps"]
    assert 300 <= checkpoint <= 310 and (out / "replay_buffer.pkl").exists()
    monkeypatch.undo()
    summary = train(TrainConfig(env_steps=500, resume=True, **common))
    assert f"resuming {out} at {checkpoint}" in capsys.readouterr().out
    assert summary["method"] == "spirl" and summary["env_steps"] >= 500
    assert summary["eval_mean_env_steps"] == 280  # the task's step limit, counted in env steps not skills
    with open(out / "episodes.csv") as f:
        episodes = list(csv.DictReader(f))
    assert episodes and all(int(e["length"]) <= 280 for e in episodes)
    assert (out / "model.zip").exists() and not (out / "checkpoint.zip").exists()
    from ptgm.evaluate import EvaluateConfig, evaluate

    assert evaluate(EvaluateConfig(run_dir=str(run), domain="kitchen", method="spirl", episodes=1))["episodes"] == 1


def test_clear_errors_for_missing_skills_other_data_and_discrete_actions(kitchen_skills, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(kitchen_skills[0] / "data", run / "data")
    with pytest.raises(PTGMError, match=re.escape(f"ptgm spirl --run-dir {run} --domain kitchen")):
        train(TrainConfig(run_dir=str(run), domain="kitchen", method="spirl", env_steps=100))
    # Skills whose dataset fingerprint is not the run's data.
    shutil.copytree(kitchen_skills[0] / "spirl", run / "spirl")
    ckpt = torch.load(run / "spirl" / "skills.pt", weights_only=False)
    torch.save(dict(ckpt, fingerprint="0" * 24), run / "spirl" / "skills.pt")
    with pytest.raises(PTGMError, match="trained on dataset 0{24}.*--force"):
        train(TrainConfig(run_dir=str(run), domain="kitchen", method="spirl", env_steps=100))
    with pytest.raises(PTGMError, match=r"continuous (\(Box\) )?actions"):
        train(TrainConfig(run_dir=str(tmp_path / "crafter"), domain="crafter", method="spirl", env_steps=100))
    with pytest.raises(PTGMError, match="continuous actions"):
        train_spirl(SpirlConfig(run_dir=str(tmp_path / "crafter"), domain="crafter"))


def test_bench_pretrains_spirl_only_when_asked(monkeypatch, tmp_path):
    from ptgm import bench
    from ptgm.bench import grid

    called = []
    for name in ("generate", "pretrain", "train_prior"):
        monkeypatch.setattr(grid, name, lambda config: {})
    monkeypatch.setattr(grid, "cluster", lambda config: {"n_clusters": config.n_clusters})
    monkeypatch.setattr(grid, "train_spirl", lambda config: called.append(config) or {"val_recon_mse": 0.0})
    config = bench.BenchConfig(run_dir=str(tmp_path), domain="kitchen", methods=("ptgm", "sac"))
    assert "spirl" not in grid._pretrain_stages(config) and not called
    config = bench.BenchConfig(run_dir=str(tmp_path), domain="kitchen", methods=("ptgm", "spirl"))
    assert grid._pretrain_stages(config)["spirl"] == {"val_recon_mse": 0.0}
    assert called[0].run_dir == str(tmp_path) and called[0].domain == "kitchen" and called[0].resume
