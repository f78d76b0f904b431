"""SPiRL baseline: skill VAE (LSTM encoder; open- and closed-loop decoders) + skill prior pre-training, the
skill environment, and SAC with the prior KL (methods spirl and spirl-cl)."""

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
    SkillPriorPolicy,
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
             prior_hidden=(32, 32), lstm_size=32)


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
    # The state-conditioned prior predicts held-out skills better than the VAE's fixed N(0, I).
    assert summary["val_prior_nll"] < summary["val_unit_prior_nll"]
    assert float(rows[-1]["val_prior_nll"]) < float(rows[0]["val_prior_nll"])
    for name in ("skills.pt", "config.json", "DONE.json"):
        assert (run / "spirl" / name).exists()
    assert (run / "spirl" / "tb").is_dir()
    assert main(["spirl", "--run-dir", str(run), "--domain", "kitchen", "--steps", "300", "--eval-every", "100",
                 "--checkpoint-every", "100", "--batch-size", "64", "--hidden", "64", "64",
                 "--prior-hidden", "32", "32", "--lstm-size", "32"]) == 0
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
    assert not called[0].closed_loop
    config = bench.BenchConfig(run_dir=str(tmp_path), domain="kitchen", methods=("ptgm", "spirl", "spirl-cl"))
    stages = grid._pretrain_stages(config)
    assert "spirl" in stages and "spirl-cl" in stages and [c.closed_loop for c in called[1:]] == [False, True]
    stages = []
    monkeypatch.setattr(grid, "pretrain", lambda config: stages.append(config) or {})
    monkeypatch.setattr(grid, "train_prior", lambda config: stages.append(config) or {})
    monkeypatch.setattr(grid, "cluster", lambda config: stages.append(config) or {"n_clusters": config.n_clusters})
    config = bench.BenchConfig(run_dir=str(tmp_path), domain="kitchen", methods=("spirl",), memory_rows=5000)
    grid._pretrain_stages(config)
    # The bench streams a large dataset in every pre-training stage.
    assert [c.memory_rows for c in stages + called[-1:]] == [5000] * 4


# -- the skill model's pieces ---------------------------------------------------------------------------------
def _model(closed_loop: bool = False, **kwargs) -> SkillModel:
    torch.manual_seed(0)
    return SkillModel(np.full(6, 2.0, np.float32), action_dim=3, horizon=4, latent_dim=2, closed_loop=closed_loop,
                      lstm_size=16, hidden=(16, 16), prior_hidden=(16, 16), **kwargs)


def test_the_lstm_encoder_reads_the_window_in_order_and_the_closed_loop_one_its_states_too():
    actions, states = torch.randn(5, 4, 3), torch.randn(5, 4, 6)
    open_loop, closed_loop = _model(), _model(closed_loop=True)
    q = open_loop.encode(actions)
    assert q.loc.shape == q.scale.shape == (5, 2) and (q.scale > 0).all()
    # A recurrent encoder: the same actions in another order are another skill (an MLP over the flat window
    # would also tell them apart; a sum or mean over steps would not).
    assert not torch.allclose(open_loop.encode(actions.flip(1)).loc, q.loc)
    assert torch.allclose(open_loop.encode(actions, states).loc, q.loc)  # the open-loop encoder ignores states
    q_cl = closed_loop.encode(actions, states)
    assert q_cl.loc.shape == (5, 2)
    other_states = states.clone()
    other_states[:, 2] += 1.0
    assert not torch.allclose(closed_loop.encode(actions, other_states).loc, q_cl.loc)
    with pytest.raises(PTGMError, match="states"):
        closed_loop.encode(actions)
    assert closed_loop.encoder.embed.in_features == 3 + 6 and open_loop.encoder.embed.in_features == 3
    # Forget gates start open (bias ½ + ½), as in the repository's LSTMs.
    n = 16
    torch.testing.assert_close(open_loop.encoder.lstm.bias_ih_l0[n:2 * n] + open_loop.encoder.lstm.bias_hh_l0[n:2 * n],
                               torch.ones(n))


def test_the_open_loop_decoder_unrolls_z_into_h_actions_without_states():
    model = _model()
    z = torch.randn(5, 2)
    actions = model.decode(z)
    assert actions.shape == (5, 4, 3)
    assert not torch.allclose(actions[:, 0], actions[:, 1])  # an autoregressive unroll, not one action repeated
    states = torch.randn(5, 4, 6)
    torch.testing.assert_close(model.reconstruct(states, z), actions)  # no state is seen
    torch.testing.assert_close(model.decode(z[:2]), actions[:2])  # each skill decodes on its own
    with pytest.raises(PTGMError, match="decode\\(z\\)"):
        model.decode_step(states[:, 0], z)


def test_the_closed_loop_decoder_decodes_each_action_from_its_own_state():
    model = _model(closed_loop=True)
    z, states = torch.randn(5, 2), torch.randn(5, 4, 6)
    actions = model.reconstruct(states, z)
    assert actions.shape == (5, 4, 3)
    for t in range(4):
        torch.testing.assert_close(actions[:, t], model.decode_step(states[:, t], z))
    moved = states.clone()
    moved[:, 2] += 1.0  # another state at step 2 changes the action of step 2 only
    changed = (model.reconstruct(moved, z) - actions).abs().amax(dim=(0, 2))
    assert changed[2] > 1e-4 and torch.all(changed[[0, 1, 3]] == 0)
    assert model.decoder[0].in_features == 6 + 2  # input: the (scaled) state and z
    with pytest.raises(PTGMError, match="decode_step"):
        model.decode(z)


def test_the_prior_losses_do_not_train_the_encoder_and_have_the_same_expected_gradient():
    model = _model()
    actions, states = torch.randn(64, 4, 3), torch.randn(64, 4, 6)
    for loss in ("kl", "nll"):
        model.zero_grad()
        q = model.encode(actions)
        model.prior_loss(states[:, 0], q, q.rsample(), loss).backward()
        assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())  # stop-gradient
        assert model.prior[0].weight.grad.abs().sum() > 0
    # E_q[-log p(z|s)] = KL(q ‖ p) + H(q): the mean NLL gradient is the summed KL's (latent_dim × the mean KL's).
    q = model.encode(actions)
    q = torch.distributions.Normal(q.loc.detach(), q.scale.detach())
    head = model.prior[-1].weight
    model.zero_grad()
    model.prior_loss(states[:, 0], q, q.loc, "kl").backward()
    kl_grad = head.grad.clone() * model.latent_dim
    model.zero_grad()
    z = q.sample((4000,)).reshape(-1, 2)
    model.prior_loss(states[:, 0].repeat(4000, 1), q, z, "nll").backward()
    torch.testing.assert_close(head.grad, kl_grad, rtol=0.05, atol=0.02)
    # The full SPiRL loss trains the encoder only through reconstruction and β·KL.
    terms = model.losses(states, actions, 5e-4, "nll")
    assert set(terms) == {"loss", "recon_mse", "kl", "prior_loss"}
    torch.testing.assert_close(terms["loss"], 0.5 * terms["recon_mse"] + 5e-4 * terms["kl"] / 2 + terms["prior_loss"])


def _fit_prior(model: SkillModel, states: torch.Tensor, q: torch.distributions.Normal, loss: str, steps: int = 400):
    optimiser = torch.optim.Adam(model.prior.parameters(), lr=3e-3)
    for _ in range(steps):
        value = model.prior_loss(states, q, q.sample(), loss)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    return model


def test_a_mixture_prior_fits_multimodal_skills_a_gaussian_cannot():
    # One state, two equally common skills at z = (±2, ±2): multimodal play.
    states = torch.ones(256, 6)
    loc = torch.where(torch.arange(256)[:, None] % 2 == 0, 2.0, -2.0).repeat(1, 2)
    q = torch.distributions.Normal(loc, torch.full_like(loc, 0.1))
    gaussian = _fit_prior(_model(), states, q, "kl")
    mixture = _fit_prior(_model(prior_type="mixture", prior_components=3), states, q, "nll")
    test_z = q.sample()
    nll = {name: -m.log_prob(m.prior_dist(states), test_z).mean().item()
           for name, m in (("gaussian", gaussian), ("mixture", mixture))}
    assert nll["mixture"] < nll["gaussian"] - 3.0  # the Gaussian has to cover both modes and the gap between
    assert gaussian.prior_dist(states[:1]).loc.abs().max() < 0.5  # ... its mean sits between them
    scaled = mixture.scale(states[:1])  # the policy-side calls take scaled observations
    samples = mixture.prior_sample(scaled.repeat(4000, 1))
    near = [((samples - c).norm(dim=-1) < 0.5).float().mean().item() for c in (2.0, -2.0)]
    assert min(near) > 0.35 and sum(near) > 0.9  # both modes, each about half the time, little in between
    mode = mixture.prior_mode(scaled)
    assert (mode.abs() - 2.0).abs().max() < 0.3  # the most likely skill is one of the modes, not their mean
    # log p of the mixture is the log-sum-exp over its components.
    dist = mixture.prior_dist(states[:1])
    weights = dist.mixture_distribution.probs[0]
    comps = dist.component_distribution.base_dist
    manual = torch.logsumexp(weights.log() + torch.distributions.Normal(comps.loc[0], comps.scale[0])
                             .log_prob(test_z[:1]).sum(-1), dim=0)
    torch.testing.assert_close(mixture.log_prob(dist, test_z[:1])[0], manual)
    metrics = mixture.prior_metrics(torch.ones(4, 4, 6), torch.randn(4, 4, 3))
    assert set(metrics) == {"prior_nll", "unit_prior_nll", "prior_kl"} and all(np.isfinite(list(metrics.values())))
    with pytest.raises(PTGMError, match="nll"):
        mixture.prior_loss(states, q, q.sample(), "kl")
    with pytest.raises(PTGMError, match="--prior-loss nll"):
        SpirlConfig(prior_type="mixture", prior_loss="kl")


# -- the closed-loop model, end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kitchen_cl_skills(kitchen_skills):
    """Closed-loop SPiRL skills on the same run's data (RUN_DIR/spirl-cl beside RUN_DIR/spirl)."""
    run = kitchen_skills[0]
    return run, train_spirl(SpirlConfig(run_dir=str(run), domain="kitchen", closed_loop=True, **SMALL))


def test_spirl_streams_a_dataset_larger_than_its_memory(kitchen_skills, tmp_path, monkeypatch):
    import shutil

    from ptgm.data.shards import EpisodeChunks

    run = tmp_path / "run"
    shutil.copytree(kitchen_skills[0] / "data", run / "data")
    loaded = []
    original = EpisodeChunks.load
    monkeypatch.setattr(EpisodeChunks, "load", lambda self, episodes: loaded.append(
        int(self.lengths[episodes].sum())) or original(self, episodes))
    summary = train_spirl(SpirlConfig(run_dir=str(run), domain="kitchen", closed_loop=True, memory_rows=300, **SMALL))
    lengths = EpisodeChunks.open(run / "data" / "play-v0").lengths
    assert len(loaded) > 2 and max(loaded) <= max(300, lengths.max())
    assert summary["fingerprint"] == kitchen_skills[1]["fingerprint"] and summary["train_windows"] > 300
    assert np.isfinite(summary["val_recon_mse"])


def test_spirl_cl_trains_and_its_skills_round_trip(kitchen_cl_skills, tmp_path):
    run, summary = kitchen_cl_skills
    assert (run / "spirl-cl" / "skills.pt").exists() and (run / "spirl" / "skills.pt").exists()
    assert summary["val_recon_mse"] < 0.5 * summary["mean_action_mse"]
    assert summary["val_prior_nll"] < summary["val_unit_prior_nll"]
    skills = load_skills(run, "kitchen", check_dataset=True, closed_loop=True)
    assert skills.closed_loop and not load_skills(run, "kitchen").closed_loop
    skills.save(tmp_path / "skills.pt", fingerprint=skills.dataset_fingerprint, domain="kitchen")
    again, _ = SkillModel.load(tmp_path / "skills.pt")
    assert again.closed_loop and again.fingerprint == skills.fingerprint
    obs, z = torch.randn(7, 59), torch.randn(7, 10)
    torch.testing.assert_close(again.decode_step(obs, z), skills.decode_step(obs, z))
    torch.testing.assert_close(again.prior_dist(obs).loc, skills.prior_dist(obs).loc)
    # The open- and closed-loop models are not interchangeable.
    other = tmp_path / "run"
    shutil.copytree(run / "data", other / "data")
    shutil.copytree(run / "spirl-cl", other / "spirl")
    with pytest.raises(PTGMError, match="closed-loop, not open-loop"):
        load_skills(other, "kitchen")
    with pytest.raises(PTGMError, match="--closed-loop"):
        train(TrainConfig(run_dir=str(other), domain="kitchen", method="spirl-cl", env_steps=100))


def test_the_closed_loop_skill_env_decodes_each_action_from_the_state_reached(kitchen_cl_skills):
    skills = load_skills(kitchen_cl_skills[0], "kitchen", closed_loop=True)
    executed, seen = [], []
    task_env = get_domain("kitchen").make_env("mkbl", max_steps=15)
    step = task_env.step

    def record(action):
        executed.append(np.array(action))
        result = step(action)
        seen.append(result[0])
        return result

    task_env.step = record
    env = SkillEnv(task_env, skills)
    obs, _ = env.reset(seed=0)
    z = np.linspace(-1, 1, 10).astype(np.float32)
    _, _, _, _, info = env.step(np.tanh(z))
    assert info["env_steps"] == 10 and len(executed) == 10
    states = np.stack([obs] + seen[:-1])  # the state each action was taken in
    with torch.no_grad():
        expected = skills.decode_step(torch.as_tensor(states), torch.as_tensor(z).expand(10, -1)).clamp(-1, 1).numpy()
    np.testing.assert_allclose(np.stack(executed), expected, atol=1e-4)
    # The prior alone as a policy (pretrained_alone.py): most likely = tanh(the prior's mode).
    policy = SkillPriorPolicy(skills)
    scaled = obs / skills.scale.scale.numpy()
    action, _ = policy.predict(scaled, deterministic=True)
    with torch.no_grad():
        mode = skills.prior_mode(torch.as_tensor(scaled[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(action, np.tanh(mode), atol=1e-6)
    assert policy.predict(scaled)[0].shape == (10,)


def test_train_spirl_cl_end_to_end_and_save_load(kitchen_cl_skills, tmp_path):
    run = kitchen_cl_skills[0]
    summary = train(TrainConfig(run_dir=str(run), domain="kitchen", method="spirl-cl", n_envs=1, eval_episodes=1,
                                sac_learning_starts=100, checkpoint_every=100, env_steps=300))
    assert summary["method"] == "spirl-cl" and summary["env_steps"] >= 300
    out = run / "rl" / "mkbl" / "spirl-cl-seed0"
    assert (out / "model.zip").exists()
    skills = load_skills(run, "kitchen", closed_loop=True)
    loaded = SpirlSAC.load(out / "model.zip", device="cpu", skills=skills)
    assert loaded.actor.latent_pi[0].in_features == 59
    from ptgm.agent import Agent

    agent = Agent.load(_save_agent(run, tmp_path))
    obs, _ = get_domain("kitchen").make_env("mkbl").reset(seed=1)
    action, info = agent.predict(obs, deterministic=True)  # a closed-loop plan: decoded from this observation
    assert np.asarray(action).shape == (9,) and info["caption"] == "skill"


def _save_agent(run, tmp_path):
    from ptgm.agent import Agent

    config = TrainConfig(run_dir=str(run), domain="kitchen", method="spirl-cl", n_envs=1, sac_learning_starts=10)
    agent = Agent("spirl-cl", config)
    agent.save(tmp_path / "agent.zip")
    return tmp_path / "agent.zip"


def test_sac_over_a_mixture_prior_needs_no_init_from_prior(kitchen_skills):
    base = load_skills(kitchen_skills[0], "kitchen")
    skills = SkillModel(**dict(base.init_kwargs, prior_type="mixture", prior_components=3)).requires_grad_(False)
    with pytest.raises(PTGMError, match="--no-init-from-prior"):
        _spirl_sac(skills)
    model = _spirl_sac(skills, init_from_prior=False)
    obs = torch.as_tensor(model.env.reset())
    _, z, log_pi = model.sample_skills(obs)
    divergence = model.prior_divergence(obs, z, log_pi)
    expected = log_pi - skills.log_prob(skills.prior_from_scaled(obs), z)
    torch.testing.assert_close(divergence, expected.clamp(-100, 100).reshape(-1, 1))
