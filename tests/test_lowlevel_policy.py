"""The low-level policy's action heads: categorical, Gaussian and mixture of Gaussians."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.lowlevel.train import PretrainConfig
from ptgm.utils import PTGMError

BOX = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)


def fit_two_modes(action_head: str) -> GoalConditionedPolicy:
    """Fit a policy to play that, from one (state, goal), acts -0.8 half the time and +0.8 the other half."""
    torch.manual_seed(0)
    policy = GoalConditionedPolicy(np.ones(1), 1, BOX, hidden=(32, 32), action_head=action_head, components=3)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-2)
    obs, goal = torch.zeros(256, 1), torch.zeros(256, 1)
    for _ in range(400):
        actions = torch.where(torch.rand(256, 1) < 0.5, -0.8, 0.8) + 0.05 * torch.randn(256, 1)
        loss = -policy.log_prob(obs, goal, actions).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return policy


def test_mixture_head_keeps_both_modes_of_multimodal_play_where_a_gaussian_averages_them():
    obs, goal = torch.zeros(2000, 1), torch.zeros(2000, 1)
    mixture, gaussian = fit_two_modes("mixture"), fit_two_modes("gaussian")
    with torch.no_grad():
        sampled = mixture.sample(obs, goal)
        best = mixture.sample(obs[:1], goal[:1], deterministic=True)
        average = gaussian.sample(obs[:1], goal[:1], deterministic=True)
    assert (sampled < -0.6).float().mean() > 0.3 and (sampled > 0.6).float().mean() > 0.3
    assert (sampled.abs() < 0.4).float().mean() < 0.05  # no mass between the modes
    assert abs(abs(best.item()) - 0.8) < 0.1  # deterministic = one mode, not their average
    assert abs(average.item()) < 0.2  # the single Gaussian's mean falls between the modes


def test_mixture_policy_round_trips_through_save_and_load(tmp_path):
    policy = GoalConditionedPolicy(np.full(4, 2.0), 3, gym.spaces.Box(-1, 1, (2,)), hidden=(16,),
                                   action_head="mixture", components=4)
    policy.save(tmp_path / "policy.pt")
    loaded, _ = GoalConditionedPolicy.load(tmp_path / "policy.pt")
    obs, goal = torch.randn(5, 4), torch.randn(5, 3)
    assert loaded.mixture and loaded.components == 4
    torch.testing.assert_close(loaded.sample(obs, goal, deterministic=True), policy.sample(obs, goal, deterministic=True))
    torch.testing.assert_close(loaded.log_prob(obs, goal, torch.zeros(5, 2)), policy.log_prob(obs, goal, torch.zeros(5, 2)))
    assert loaded.act(np.zeros(4, np.float32), np.zeros(3, np.float32)).shape == (2,)


def test_checkpoints_from_before_the_mixture_head_load_as_gaussian(tmp_path):
    policy = GoalConditionedPolicy(np.ones(4), 3, gym.spaces.Box(-1, 1, (2,)), hidden=(16,))
    policy.save(tmp_path / "policy.pt")
    ckpt = torch.load(tmp_path / "policy.pt", weights_only=False)
    for key in ("action_head", "components"):
        del ckpt["init_kwargs"][key]
    torch.save(ckpt, tmp_path / "old.pt")
    loaded, _ = GoalConditionedPolicy.load(tmp_path / "old.pt")
    assert not loaded.mixture and loaded.log_std.shape == (2,)


def test_discrete_actions_keep_the_categorical_head_whatever_the_action_head():
    policy = GoalConditionedPolicy(np.ones(4), 3, gym.spaces.Discrete(5), hidden=(16,), action_head="mixture")
    actions = policy.sample(torch.randn(7, 4), torch.randn(7, 3))
    assert actions.shape == (7,) and actions.dtype == torch.int64 and int(actions.max()) < 5


def test_bad_action_head_settings_are_rejected():
    with pytest.raises(PTGMError, match="Unknown action head 'flow'"):
        PretrainConfig(action_head="flow")
    with pytest.raises(PTGMError, match="--mixture-components must be at least 1"):
        PretrainConfig(action_head="mixture", mixture_components=0)
    with pytest.raises(PTGMError, match="Unknown action head 'flow'.*gaussian, mixture"):
        GoalConditionedPolicy(np.ones(2), 1, BOX, action_head="flow")


def test_goal_delta_gives_the_policy_the_change_its_goal_asks_for_and_survives_save_and_load(tmp_path):
    from ptgm.lowlevel.policy import GOAL_DELTA_GAIN

    pairs = (np.array([0, 2]), np.array([3, 1]), np.array([0.5, 0.25], np.float32))
    policy = GoalConditionedPolicy(np.full(4, 2.0), 3, gym.spaces.Discrete(5), hidden=(16,), goal_delta=pairs)
    obs, goal = torch.randn(6, 4), torch.randn(6, 3)
    inputs = policy._inputs(obs, goal)
    assert inputs.shape == (6, 4 + 3 + 2) and policy.net[0].in_features == 9
    expected = torch.stack([goal[:, 0] - 0.5 * obs[:, 3], goal[:, 2] - 0.25 * obs[:, 1]], dim=1)
    torch.testing.assert_close(inputs[:, 7:], GOAL_DELTA_GAIN * expected)
    policy.save(tmp_path / "policy.pt")
    loaded, _ = GoalConditionedPolicy.load(tmp_path / "policy.pt")
    assert loaded.goal_delta
    torch.testing.assert_close(loaded.distribution(obs, goal).logits, policy.distribution(obs, goal).logits)
    plain = GoalConditionedPolicy(np.full(4, 2.0), 3, gym.spaces.Discrete(5), hidden=(16,))
    assert not plain.goal_delta and "goal_delta" not in plain.init_kwargs and plain.net[0].in_features == 7


def test_crafter_goal_delta_pairs_are_the_inventory_entries_of_its_goal_features():
    from ptgm.domains import get_domain
    from ptgm.domains.crafter.env import observation_space

    domain = get_domain("crafter")
    space = observation_space()
    space.seed(0)
    obs = np.stack([space.sample() for _ in range(20)])
    goal_index, obs_index, scale = domain.goal_observation_pairs()
    np.testing.assert_allclose(domain.goal_features(obs)[:, goal_index], obs[:, obs_index] * scale, rtol=1e-6)
    assert PretrainConfig(domain="crafter").goal_delta and not PretrainConfig(domain="kitchen").goal_delta
    with pytest.raises(PTGMError, match="--goal-delta needs goal features that are entries of the observation"):
        PretrainConfig(domain="kitchen", goal_delta=True)


def test_crafter_goal_composition_asks_for_no_loss_and_keeps_what_the_cluster_goal_adds():
    from ptgm.domains import get_domain
    from ptgm.domains.crafter.env import INVENTORY_OFFSET, ITEMS, observation_space

    domain = get_domain("crafter")
    space = observation_space()
    space.seed(0)
    now, goal_state = space.sample(), space.sample()
    now[INVENTORY_OFFSET:INVENTORY_OFFSET + len(ITEMS)] = 0
    now[INVENTORY_OFFSET + ITEMS.index("wood")] = 5
    now[INVENTORY_OFFSET + ITEMS.index("health")] = 3
    goal_state[INVENTORY_OFFSET:INVENTORY_OFFSET + len(ITEMS)] = 0
    goal_state[INVENTORY_OFFSET + ITEMS.index("wood")] = 2
    goal_state[INVENTORY_OFFSET + ITEMS.index("wood_pickaxe")] = 1
    goal_state[INVENTORY_OFFSET + ITEMS.index("health")] = 9
    cluster_goal = domain.goal_features(goal_state[None])
    composed = domain.compose_goal(cluster_goal, now[None])[0]
    inventory = np.rint(composed[:len(ITEMS)] * 9).astype(int)
    assert inventory[ITEMS.index("wood")] == 5  # not asked to lose 3 wood
    assert inventory[ITEMS.index("wood_pickaxe")] == 1  # what the goal adds stays
    assert inventory[ITEMS.index("health")] == 3  # health is no goal
    np.testing.assert_array_equal(composed[len(ITEMS):], cluster_goal[0, len(ITEMS):])  # the rest is the goal's
