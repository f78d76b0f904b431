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


def test_bc_ppo_trains_from_the_cloned_policy(tiny_run):
    summary = train(TrainConfig(run_dir=str(tiny_run), method="bc-ppo", bc_steps=50, env_steps=300, n_envs=2,
                                n_steps=32, eval_episodes=1, seed=3))
    assert summary["method"] == "bc-ppo" and summary["env_steps"] >= 300
