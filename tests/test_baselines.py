"""BC + fine-tune baseline: behaviour cloning of a flat SB3 policy on the play data."""

import numpy as np
import pytest
from stable_baselines3 import PPO

from ptgm.baselines.bc import behaviour_clone
from ptgm.data.generate import load_run_dataset
from ptgm.domains import get_domain
from ptgm.hrl.wrapper import ScaledObservation
from ptgm.train import TrainConfig, train
from ptgm.utils import PTGMError


def test_behaviour_cloning_fits_the_play_actions(tiny_run):
    env = ScaledObservation(get_domain("crafter").make_env("collect_wood"))
    model = PPO("MlpPolicy", env, policy_kwargs=dict(net_arch=[64]), device="cpu", seed=0)
    data = load_run_dataset(tiny_run)
    rows = data.action_rows()
    obs = data.observations[rows].astype(np.float32) / env.scale
    before = behaviour_clone(model.policy, obs, data.actions[rows], steps=1)
    after = behaviour_clone(model.policy, obs, data.actions[rows], steps=300)
    assert after["bc_loss"] < before["bc_loss"]
    # Crafter has 17 actions: cloning must beat a uniform guess clearly.
    assert after["bc_accuracy"] > 2 / 17
    with pytest.raises(PTGMError, match="matching"):
        behaviour_clone(model.policy, obs[:5], data.actions[rows][:4], steps=1)


def test_behaviour_cloning_stops_when_the_held_out_loss_stops_improving(tiny_run, monkeypatch):
    import ptgm.baselines.bc as bc

    monkeypatch.setattr(bc, "BC_CHECK_EVERY", 20)
    env = ScaledObservation(get_domain("crafter").make_env("collect_wood"))
    model = PPO("MlpPolicy", env, policy_kwargs=dict(net_arch=[64]), device="cpu", seed=0)
    data = load_run_dataset(tiny_run)
    train_eps, val_eps = data.split_episodes(0.2, 0)
    rows, val_rows = data.action_rows(train_eps), data.action_rows(val_eps)
    obs, val_obs = (data.observations[r].astype(np.float32) / env.scale for r in (rows, val_rows))
    # A learning rate this high overfits the small dataset at once: the held-out loss turns up early.
    result = behaviour_clone(model.policy, obs, data.actions[rows], steps=20_000, learning_rate=3e-3,
                             val_observations=val_obs, val_actions=data.actions[val_rows])
    assert result["bc_steps"] < 20_000 and np.isfinite(result["bc_val_loss"])
    import torch
    with torch.no_grad():  # the weights kept are the best check's
        kept = -model.policy.evaluate_actions(torch.as_tensor(val_obs), torch.as_tensor(data.actions[val_rows]))[1]
    assert kept.mean().item() == pytest.approx(result["bc_val_loss"], rel=1e-5)


def test_bc_ppo_fine_tunes_as_vpt_does(tiny_run, tmp_path):
    import torch

    from ptgm.agent import Agent
    from ptgm.baselines.bc import actor_parameters

    config = TrainConfig(run_dir=str(tiny_run), method="bc-ppo", bc_steps=50, env_steps=512, n_envs=2, n_steps=32,
                         eval_episodes=1, seed=3, bc_critic_warmup=0.25, bc_kl_coef=0.5)
    agent = Agent("bc-ppo", config)
    model = agent.model
    actor = [p.detach().clone() for p in actor_parameters(model.policy)]
    critic = [p.detach().clone() for p in model.policy.value_net.parameters()]
    # The clone is the reference of the KL term: zero divergence before any RL.
    obs = torch.rand(5, model.observation_space.shape[0])
    with torch.no_grad():
        kl = torch.distributions.kl_divergence(model.reference_policy.get_distribution(obs).distribution,
                                               model.policy.get_distribution(obs).distribution)
    assert torch.allclose(kl, torch.zeros_like(kl), atol=1e-6)
    model.learn(64)  # within the warm-up (a quarter of 512): the critic learns, the actor holds still
    assert all(torch.equal(a, p) for a, p in zip(actor, actor_parameters(model.policy)))
    assert not all(torch.equal(c, p) for c, p in zip(critic, model.policy.value_net.parameters()))
    model.learn(192, reset_num_timesteps=False)  # past it, the actor moves too
    assert not all(torch.equal(a, p) for a, p in zip(actor, actor_parameters(model.policy)))
    assert all(p.requires_grad for p in actor_parameters(model.policy))
    # The reference travels with the saved model; the KL to it is logged.
    model.save(tmp_path / "model.zip")
    loaded = agent.method.load_model(config, tmp_path / "model.zip", None)
    for a, b in zip(model.reference_policy.parameters(), loaded.reference_policy.parameters()):
        assert torch.equal(a, b)
    # Once the actor has moved, the reward's KL term to the clone is positive.
    from ptgm.baselines.bc import ClonedPolicyKLReward

    term = ClonedPolicyKLReward(model.reference_policy, model.kl_coef)
    term.init_callback(model)
    with torch.no_grad():
        assert (term.divergence(obs) > 0).all()
    model.get_env().close()


def test_bc_ppo_trains_from_the_cloned_policy(tiny_run):
    summary = train(TrainConfig(run_dir=str(tiny_run), method="bc-ppo", bc_steps=50, env_steps=300, n_envs=2,
                                n_steps=32, eval_episodes=1, seed=3))
    assert summary["method"] == "bc-ppo" and summary["env_steps"] >= 300


def test_flat_sac_takes_one_gradient_step_per_environment_step():
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ptgm.methods import get_method

    vec_env = DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 4)
    config = TrainConfig(domain="kitchen", method="sac", sac_learning_starts=0, hidden=(32,), device="cpu")
    model = get_method("sac").make_model(config, vec_env)
    model.learn(64)  # 16 steps of 4 environments
    assert model._n_updates == 64
    vec_env.close()


def test_the_ablations_each_change_one_thing(tiny_run):
    import torch

    from ptgm.agent import Agent
    from ptgm.hrl.ppo import kl_prior_to_policy
    from ptgm.hrl.pretrained import Pretrained

    prior = Pretrained.load(tiny_run).prior
    for method, kl_coef, starts_as_prior in (("ptgm", 0.01, True), ("ptgm-no-kl", 0.0, True),
                                             ("ptgm-no-init", 0.01, False), ("ptgm-no-prior", 0.0, False)):
        model = Agent(method, TrainConfig(run_dir=str(tiny_run), method=method, n_envs=1, seed=3)).model
        obs = torch.rand(6, model.observation_space.shape[0])
        with torch.no_grad():
            kl = kl_prior_to_policy(prior.logits_from_scaled(obs), model.policy.get_distribution(obs).distribution.logits)
        assert model.kl_coef == kl_coef, method
        assert (kl.abs().max().item() < 1e-5) == starts_as_prior, method
        model.get_env().close()
