import json
import math
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from ptgm.domains import get_domain
from ptgm.domains.crafter.env import CrafterEnv, CrafterTask
from ptgm.evaluate import EvaluateConfig, evaluate
from ptgm.hrl.ppo import PTGMPPO, kl_prior_to_policy
from ptgm.hrl.pretrained import Pretrained
from ptgm.hrl.sac import GoalSAC, GoalSACPolicy
from ptgm.hrl.wrapper import ContinuousGoalEnv, GoalSelectionEnv, GoalSelectionVecEnv, ScaledObservation
from ptgm.train import TrainConfig, train


def test_kl_has_the_right_sign_and_size():
    prior = torch.log(torch.tensor([[0.5, 0.5]]))
    policy = torch.log(torch.tensor([[0.9, 0.1]]))
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_prior_to_policy(prior, policy).item() == pytest.approx(expected, rel=1e-5)
    # KL(p‖q) != KL(q‖p): check the direction is prior-first.
    reverse = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert kl_prior_to_policy(policy, prior).item() == pytest.approx(reverse, rel=1e-5)
    assert kl_prior_to_policy(prior, prior).item() == pytest.approx(0.0, abs=1e-7)
    assert (kl_prior_to_policy(torch.randn(100, 8), torch.randn(100, 8)) >= 0).all()


class _StepCounter:
    """Counts calls to the inner env's step without replacing it."""

    def __init__(self, env):
        self.count = 0
        original = env.step

        def step(action):
            self.count += 1
            return original(action)

        env.step = step


def test_wrapper_runs_exactly_k_steps_and_stops_at_episode_end(tiny_run):
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    base = CrafterEnv(CrafterTask("collect_diamond", {}, max_steps=25))
    counter = _StepCounter(base)
    env = GoalSelectionEnv(base, policy, codebook.goal_features, k=10)
    assert env.action_space.n == codebook.n_goals
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(3)
    assert info["env_steps"] == 10 and counter.count == 10 and info["goal"] == 3
    assert reward == 0.0 and not (terminated or truncated)
    env.step(0)
    _, _, terminated, truncated, info = env.step(1)
    assert truncated and info["env_steps"] == 5 and counter.count == 25


def test_wrappers_give_the_low_level_policy_the_composed_goal(tiny_run, monkeypatch):
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    goals = codebook.goal_features
    composed, given = [], []

    def to_goal_five(chosen, observations):
        composed.append((chosen.copy(), observations.shape))
        return np.repeat(goals[5:6], len(chosen), 0)

    sample = policy.sample

    def recording_sample(obs, goal, deterministic=False):
        given.append(goal.numpy().copy())
        return sample(obs, goal, deterministic)

    monkeypatch.setattr(policy, "sample", recording_sample)
    env = GoalSelectionEnv(CrafterEnv("collect_wood"), policy, goals, k=4, compose_goal=to_goal_five)
    env.reset(seed=0)
    env.step(2)
    # Composed once per high-level step, from the chosen goal in the state it was chosen in.
    assert len(composed) == 1 and np.array_equal(composed[0][0], goals[2:3])
    assert composed[0][1] == (1, policy.obs_dim)
    assert len(given) == 4 and all(np.array_equal(g, goals[5:6]) for g in given)
    composed.clear(), given.clear()
    vec = GoalSelectionVecEnv([lambda: CrafterEnv("collect_wood")] * 2, policy, goals, k=3, compose_goal=to_goal_five)
    vec.reset()
    vec.step(np.array([0, 1]))
    assert len(composed) == 1 and np.array_equal(composed[0][0], goals[[0, 1]]) and composed[0][1][0] == 2
    assert len(given) == 3 and all(np.array_equal(g, goals[[5, 5]]) for g in given)


def test_wrapper_sums_task_reward_and_ends_on_success(tiny_run):
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    base = CrafterEnv("collect_wood")
    env = GoalSelectionEnv(base, policy, codebook.goal_features, k=50)
    env.reset(seed=0)
    x, y = base.player.pos
    # Surround the player with trees: any 'do' collects wood, so success comes within k steps.
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        obj = base.world[(x + dx, y + dy)][1]
        if obj is not None:
            base.world.remove(obj)
        base.world[(x + dx, y + dy)] = "tree"
    total = 0.0
    for _ in range(20):
        _, reward, terminated, truncated, info = env.step(0)
        total += reward
        if terminated or truncated:
            break
    assert terminated and total == 1.0 and info["is_success"]
    assert info["env_steps"] <= 50


def test_wrapper_rejects_mismatched_policy(tiny_run):
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    with pytest.raises(ValueError, match="featurisers"):
        GoalSelectionEnv(CrafterEnv("collect_wood"), policy, codebook.goal_features[:, :5], k=10)


def _hl_env(tiny_run, task="collect_diamond"):
    pieces = Pretrained.load(tiny_run)
    policy, codebook, prior = pieces.policy, pieces.codebook, pieces.prior

    def make():
        env = ScaledObservation(GoalSelectionEnv(CrafterEnv(task), policy, codebook.goal_features, k=2))
        env.reset(seed=0)
        return env

    return DummyVecEnv([make]), prior


def test_rollout_rewards_carry_minus_alpha_kl(tiny_run):
    vec_env, prior = _hl_env(tiny_run)  # no diamond within 16 env steps: the task reward is 0
    alpha = 0.7
    model = PTGMPPO("MlpPolicy", vec_env, prior=prior, kl_coef=alpha, learning_rate=0.0, n_steps=8, batch_size=8,
                    n_epochs=1, seed=0, device="cpu",
                    policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32]), activation_fn=torch.nn.ReLU))
    model.learn(total_timesteps=8)
    buf = model.rollout_buffer
    obs = torch.as_tensor(buf.observations.reshape(8, -1))
    with torch.no_grad():
        kl = kl_prior_to_policy(prior.logits_from_scaled(obs),
                                model.policy.get_distribution(obs).distribution.logits).numpy()
    assert (kl > 0).all()
    np.testing.assert_allclose(buf.rewards.reshape(-1), -alpha * kl, rtol=1e-4, atol=1e-6)


def test_initialising_from_the_prior_copies_it(tiny_run):
    vec_env, prior = _hl_env(tiny_run)
    model = PTGMPPO("MlpPolicy", vec_env, prior=prior, kl_coef=0.1, init_from_prior=True, device="cpu",
                    policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32]), activation_fn=torch.nn.ReLU))
    obs = torch.rand(5, vec_env.observation_space.shape[0])
    with torch.no_grad():
        policy_logits = model.policy.get_distribution(obs).distribution.logits
        kl = kl_prior_to_policy(prior.logits_from_scaled(obs), policy_logits)
    assert torch.allclose(kl, torch.zeros(5), atol=1e-5)
    with pytest.raises(ValueError, match="do not match"):
        PTGMPPO("MlpPolicy", vec_env, prior=prior, init_from_prior=True, device="cpu",
                policy_kwargs=dict(net_arch=dict(pi=[16], vf=[16]), activation_fn=torch.nn.ReLU))


def test_batched_vec_env_matches_single_goal_selection_envs(tiny_run):
    """GoalSelectionVecEnv = ScaledObservation(GoalSelectionEnv) per env, including episode ends mid-goal."""
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    make = [lambda: CrafterEnv("collect_wood", max_steps=25) for _ in range(2)]
    vec = GoalSelectionVecEnv(make, policy, codebook.goal_features, k=10, deterministic=True)
    vec.seed(5)
    singles = [ScaledObservation(GoalSelectionEnv(CrafterEnv("collect_wood", max_steps=25), policy,
                                                  codebook.goal_features, k=10, deterministic=True)) for _ in range(2)]
    vec_obs = vec.reset()
    for i, env in enumerate(singles):
        np.testing.assert_allclose(vec_obs[i], env.reset(seed=5 + i)[0])
    rng = np.random.default_rng(0)
    saw_short_step = False
    for _ in range(8):
        goals = rng.integers(codebook.n_goals, size=2)
        vec_obs, rewards, dones, infos = vec.step(goals)
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(goals[i])
            assert infos[i]["env_steps"] == info["env_steps"] and rewards[i] == reward
            assert dones[i] == (terminated or truncated)
            if dones[i]:
                np.testing.assert_allclose(infos[i]["terminal_observation"], obs)
                obs, _ = env.reset()
                saw_short_step |= info["env_steps"] < 10
            np.testing.assert_allclose(vec_obs[i], obs)
    assert saw_short_step  # 25-step episodes end in the middle of a 10-step goal


def test_continuous_goal_env_maps_actions_onto_the_goal_box(tiny_run):
    pieces = Pretrained.load(tiny_run)
    policy, codebook = pieces.policy, pieces.codebook
    low, high = codebook.goal_features.min(0), codebook.goal_features.max(0)
    env = ContinuousGoalEnv(get_domain("crafter").make_env("collect_wood"), policy, low, high, k=3)
    assert env.action_space.shape == (policy.goal_dim,)
    np.testing.assert_allclose(env._goal(-np.ones(policy.goal_dim))[0].numpy(), low, atol=1e-6)
    np.testing.assert_allclose(env._goal(np.ones(policy.goal_dim))[0].numpy(), high, atol=1e-6)
    np.testing.assert_allclose(env._goal(np.zeros(policy.goal_dim))[0].numpy(), (low + high) / 2, atol=1e-6)
    env.reset(seed=0)
    *_, info = env.step(env.action_space.sample())
    assert 1 <= info["env_steps"] <= 3 and info["goal"] == -1


def test_no_cluster_ablation_trains(tiny_run):
    summary = train(TrainConfig(run_dir=str(tiny_run), method="ptgm-no-cluster", env_steps=300, n_envs=2, n_steps=16,
                                eval_episodes=1, seed=4))
    assert summary["method"] == "ptgm-no-cluster" and summary["env_steps"] >= 300


def test_target_kl_reaches_ppo_and_zero_leaves_it_off(tiny_run):
    from stable_baselines3.common.save_util import load_from_zip_file

    from ptgm.train import run_directory

    for target_kl, expected in ((0.02, 0.02), (0.0, None)):
        config = TrainConfig(run_dir=str(tiny_run), env_steps=200, n_envs=2, n_steps=16, eval_episodes=1, seed=5,
                             target_kl=target_kl, force=True)
        train(config)
        data, _, _ = load_from_zip_file(run_directory(config) / "model.zip")
        assert data["target_kl"] == expected


def test_learning_rate_anneals_linearly_over_the_env_step_budget(tiny_run):
    from types import SimpleNamespace

    from stable_baselines3.common.save_util import load_from_zip_file

    from ptgm.train import LinearLearningRateDecay, run_directory

    decay = LinearLearningRateDecay(3e-4, SimpleNamespace(env_steps=250, budget=1000))
    assert decay.rate() == pytest.approx(2.25e-4)
    decay.recorder.env_steps = 1200
    assert decay.rate() == 0.0
    config = TrainConfig(run_dir=str(tiny_run), env_steps=400, n_envs=2, n_steps=16, eval_episodes=1, seed=6,
                         anneal_lr=True)
    train(config)
    data, _, _ = load_from_zip_file(run_directory(config) / "model.zip")
    # The rate of the last update was set from the env steps by then (a constant run keeps 3e-4).
    assert 0.0 <= data["lr_schedule"](1.0) < 3e-4


class _Bandit(gym.Env):
    """One-step episodes: goal 3 of 8 pays 1, the rest 0."""

    observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(4, 0.5, np.float32), {}

    def step(self, action):
        return np.full(4, 0.5, np.float32), float(action == 3), True, False, {}


def test_goal_sac_learns_the_paying_goal_and_tunes_alpha():
    model = GoalSAC("MlpPolicy", DummyVecEnv([_Bandit]), learning_rate=3e-3, learning_starts=20, batch_size=32,
                    target_divergence=1.0, alpha_init=0.5, seed=0, device="cpu",
                    policy_kwargs=dict(net_arch=[32]))
    model.learn(total_timesteps=600)
    with torch.no_grad():
        probs = torch.softmax(model.policy.logits(torch.full((1, 4), 0.5)), -1)[0]
    assert probs[3] > 0.5
    # Without a prior the divergence is to the uniform distribution (log 8 at most); α falls while it is under 1.
    assert model.log_alpha.exp().item() < 0.5


def test_goal_sac_starts_as_the_prior_and_round_trips(tiny_run, tmp_path):
    vec_env, prior = _hl_env(tiny_run)
    model = GoalSAC("MlpPolicy", vec_env, prior=prior, learning_starts=4, batch_size=8, seed=0, device="cpu",
                    policy_kwargs=dict(net_arch=[32, 32]))
    obs = torch.rand(5, vec_env.observation_space.shape[0])
    with torch.no_grad():
        kl = kl_prior_to_policy(prior.logits_from_scaled(obs), model.policy.logits(obs))
    assert torch.allclose(kl, torch.zeros(5), atol=1e-5)
    model.learn(total_timesteps=12)
    model.save(tmp_path / "sac.zip")
    loaded = GoalSAC.load(tmp_path / "sac.zip", device="cpu", prior=prior)
    assert loaded.prior is prior and loaded.log_alpha.item() == pytest.approx(model.log_alpha.item())
    with torch.no_grad():
        torch.testing.assert_close(loaded.policy.logits(obs), model.policy.logits(obs))
        torch.testing.assert_close(loaded.policy.q_values(obs), model.policy.q_values(obs))
    model.policy.save(tmp_path / "policy.pt")  # the policy alone, as SB3 policies save
    alone = GoalSACPolicy.load(tmp_path / "policy.pt", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(alone.logits(obs), model.policy.logits(obs))
    with pytest.raises(ValueError, match="do not match"):
        GoalSAC("MlpPolicy", vec_env, prior=prior, device="cpu", policy_kwargs=dict(net_arch=[16]))


def test_ptgm_sac_trains_resumes_and_evaluates(tiny_run, monkeypatch, tmp_path):
    import ptgm.train as hrl_train

    base = dict(run_dir=str(tiny_run), method="ptgm-sac", env_steps=300, n_envs=2, eval_episodes=1, seed=6,
                sac_learning_starts=40, checkpoint_every=100)
    original = hrl_train.EpisodeRecorder.save_checkpoint

    def save_then_stop(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(hrl_train.EpisodeRecorder, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**base))
    out = tiny_run / "rl" / "collect_wood" / "ptgm-sac-seed6"
    assert (out / "checkpoint.zip").exists() and (out / "replay_buffer.pkl").exists()
    monkeypatch.setattr(hrl_train.EpisodeRecorder, "save_checkpoint", original)
    summary = train(TrainConfig(**base, resume=True))
    assert summary["method"] == "ptgm-sac" and summary["env_steps"] >= 300
    result = evaluate(EvaluateConfig(run_dir=str(tiny_run), method="ptgm-sac", seed=6, episodes=1))
    assert result["episodes"] == 1 and result["best_return"] >= result["mean_return"]
    # --deterministic reaches the policy: every high-level action is its most likely goal.
    asked = []
    predict = BaseAlgorithm.predict
    monkeypatch.setattr(BaseAlgorithm, "predict", lambda self, *a, **kw: asked.append(kw["deterministic"]) or
                        predict(self, *a, **kw))
    result = evaluate(EvaluateConfig(run_dir=str(tiny_run), method="ptgm-sac", seed=6, episodes=1, deterministic=True))
    assert result["deterministic"] and asked and all(asked)
    monkeypatch.setattr(BaseAlgorithm, "predict", predict)
    # Several seeds: one row each and their mean ± std, written as Markdown and JSON.
    train(TrainConfig(**{**base, "seed": 7, "checkpoint_every": 25_000}))
    out = tmp_path / "eval" / "greedy.md"
    result = evaluate(EvaluateConfig(run_dir=str(tiny_run), method="ptgm-sac", seeds=(6, 7), episodes=2,
                                     deterministic=True, out=str(out)))
    returns = [r["mean_return"] for r in result["runs"]]
    assert [r["seed"] for r in result["runs"]] == [6, 7]
    assert result["mean_return_mean"] == pytest.approx(np.mean(returns))
    table = out.read_text()
    assert "most likely actions" in table and "| 6 |" in table and "| 7 |" in table and "| mean ± std |" in table
    assert [r["seed"] for r in json.loads(out.with_suffix(".json").read_text())["runs"]] == [6, 7]


def test_make_model_starts_each_method_from_its_pretrained_pieces(tiny_run):
    from ptgm.agent import Agent

    starts = {}
    for method in ("ptgm", "ptgm-no-prior", "ppo"):
        agent = Agent(method, TrainConfig(run_dir=str(tiny_run), method=method, n_envs=1, seed=3))
        assert (agent.pieces is None) == (method == "ppo")
        starts[method] = (agent.model, agent.model.observation_space.shape[0])
        agent.model.get_env().close()
    prior = Pretrained.load(tiny_run).prior
    obs = torch.rand(6, starts["ptgm"][1])
    for method, expected_kl in (("ptgm", 0.0), ("ptgm-no-prior", None)):
        model = starts[method][0]
        with torch.no_grad():
            kl = kl_prior_to_policy(prior.logits_from_scaled(obs), model.policy.get_distribution(obs).distribution.logits)
        if expected_kl is None:  # a fresh actor, not the prior
            assert kl.mean().item() > 1e-3 and model.prior is None and model.kl_coef == 0.0
        else:  # PTGM's actor is the prior before any RL, and its reward carries α·KL
            assert torch.allclose(kl, torch.zeros(6), atol=1e-5) and model.kl_coef == 0.01
    assert type(starts["ppo"][0]).__name__ == "PPO" and starts["ppo"][0].num_timesteps == 0
    assert all(model.normalize_advantage for model, _ in starts.values())  # SB3's default unless turned off
    agent = Agent("ptgm", TrainConfig(run_dir=str(tiny_run), n_envs=1, normalize_advantage=False))
    assert agent.model.normalize_advantage is False
    agent.model.get_env().close()


def test_pretrained_alone_benchmark_evaluates_each_start(tiny_run, tmp_path, monkeypatch):

    script = _load_benchmark("pretrained_alone")
    out = tmp_path / "alone.md"
    monkeypatch.setattr(sys, "argv", ["pretrained_alone.py", "--domain", "crafter", "--run-dir", str(tiny_run),
                                      "--task", "collect_wood", "--methods", "ptgm", "ppo", "--episodes", "1",
                                      "--out", str(out)])
    script.main()
    record = json.loads(out.with_suffix(".json").read_text())
    assert [(row["method"], row["deterministic"]) for row in record["rows"]] == [
        ("ptgm", False), ("ptgm", True), ("ppo", False), ("ppo", True)]
    for row in record["rows"]:
        assert len(row["runs"]) == 1 and 0.0 <= row["runs"][0]["success_rate"] <= 1.0
    table = out.read_text()
    assert "goal prior → low-level policy" in table and "most likely" in table and "pretrained_alone.py" in table


def test_action_accuracy_benchmark_scores_every_action_of_the_held_out_play(tiny_run, tmp_path, monkeypatch):
    script = _load_benchmark("action_accuracy")
    out = tmp_path / "actions.md"
    monkeypatch.setattr(sys, "argv", ["action_accuracy.py", "--run-dir", str(tiny_run), "--out", str(out)])
    script.main()
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record["horizons"]) == {"1", "1..20"}
    for label, (scores,) in record["horizons"].items():
        steps = sum(row["steps"] for row in scores["actions"].values())
        assert steps == record["steps"] > 0
        # The overall accuracy is the steps-weighted mean of the per-action accuracies.
        weighted = sum(row["steps"] * row["accuracy"] for row in scores["actions"].values() if row["steps"])
        assert abs(weighted / steps - scores["accuracy"]) < 1e-9
        assert all(0.0 <= row["probability"] <= 1.0 for row in scores["actions"].values() if row["steps"])
    table = out.read_text()
    assert "| **all** |" in table and "action_accuracy.py" in table and "| noop |" in table


def test_crafter_deaths_benchmark_puts_every_episode_end_down_to_one_cause(tiny_run, tmp_path, monkeypatch):
    script = _load_benchmark("crafter_deaths")
    out = tmp_path / "deaths.md"
    monkeypatch.setattr(sys, "argv", ["crafter_deaths.py", "--run-dir", str(tiny_run), "--task", "collect_wood",
                                      "--episodes", "2", "--out", str(out)])
    script.main()
    record = json.loads(out.with_suffix(".json").read_text())
    (result,) = record["results"].values()
    assert abs(sum(result["causes"].values()) - 1.0) < 1e-9 and set(result["causes"]) == set(script.CAUSES)
    assert result["mean_length"] > 0 and "crafter_deaths.py" in out.read_text()


def test_crafter_deaths_names_the_zombie_next_to_a_dead_player():
    from ptgm.domains.crafter.env import CrafterEnv
    from crafter import objects

    script = _load_benchmark("crafter_deaths")
    env = CrafterEnv("collect_iron")
    env.reset(seed=3)
    game = env.unwrapped._game
    player, world = game._player, game._world
    x, y = player.pos
    world[(x + 1, y)] = "grass"
    for obj in [o for o in world.objects if o is not player and abs(o.pos[0] - x) + abs(o.pos[1] - y) <= 1]:
        world.remove(obj)
    assert script.cause_of_end(env, terminated=True, truncated=False, success=False) in ("starved", "other")
    world.add(objects.Zombie(world, (x + 1, y), player))
    assert script.cause_of_end(env, terminated=True, truncated=False, success=False) == "zombie"
    assert script.cause_of_end(env, terminated=False, truncated=True, success=False) == "time limit"
    assert script.cause_of_end(env, terminated=True, truncated=False, success=True) == "success"


def test_crafter_deaths_counts_the_walkable_cells_next_to_a_sleeper():
    from ptgm.domains.crafter.env import SLEEP_OFFSET, CrafterEnv, symbolic_observation

    script = _load_benchmark("crafter_deaths")
    env = CrafterEnv("collect_iron")
    env.reset(seed=3)
    game = env.unwrapped._game
    x, y = game._player.pos
    for obj in [o for o in game._world.objects if o is not game._player]:
        game._world.remove(obj)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        game._world[(x + dx, y + dy)] = "stone"
    walled = symbolic_observation(game)
    game._world[(x + 1, y)] = "grass"
    game._world[(x, y + 1)] = "path"
    opened = symbolic_observation(game)
    assert list(script.open_neighbours(np.stack([walled, opened]))) == [0, 2]
    asleep = np.stack([walled, opened, opened])
    asleep[:, SLEEP_OFFSET] = 1
    assert abs(script.sheltered_sleep(asleep) - 1 / 3) < 1e-9
    assert script.sheltered_sleep(np.stack([walled])) is None  # awake: no sleep to judge


def test_crafter_pieces_compose_goals_only_for_a_low_level_policy_with_the_goal_delta(tiny_run):
    from ptgm.domains.crafter.env import INVENTORY_OFFSET, ITEMS
    from ptgm.hrl.pretrained import Pretrained
    from ptgm.lowlevel.policy import GoalConditionedPolicy

    pieces = Pretrained.load(tiny_run)
    assert pieces.policy.goal_delta  # Crafter's default
    obs = pieces.codebook.goal_observations[:1].copy()
    obs[0, INVENTORY_OFFSET + ITEMS.index("wood")] = 9  # more wood than any cluster goal asks for
    goals = pieces.codebook.goal_features
    composed = pieces.compose_goal(goals, np.repeat(obs, len(goals), axis=0))
    assert np.allclose(composed[:, ITEMS.index("wood")], 1.0) and not np.allclose(composed, goals)
    plain_policy = GoalConditionedPolicy(pieces.policy.init_kwargs["obs_scale"], goals.shape[1],
                                         gym.spaces.Discrete(pieces.policy.action_dim), hidden=(8,))
    older = Pretrained(plain_policy, pieces.codebook, pieces.prior, pieces.lowlevel)
    np.testing.assert_array_equal(older.compose_goal(goals, np.repeat(obs, len(goals), axis=0)), goals)


def _load_benchmark(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_goal_reaching_benchmark_finds_each_gain_of_an_inventory_entry():
    from ptgm.data.dataset import TrajectoryData
    from ptgm.domains.crafter.env import INVENTORY_OFFSET, ITEMS, OBS_DIM

    script = _load_benchmark("goal_reaching")
    wood = ITEMS.index("wood")
    episodes = []
    for counts in ([0, 1, 1, 2, 1, 3], [5, 4, 4]):  # rises after steps 1, 3, 5 of the first; none in the second
        obs = np.zeros((len(counts), OBS_DIM), np.uint8)
        obs[:, INVENTORY_OFFSET + wood] = counts
        episodes.append(obs)
    data = TrajectoryData.from_episodes(episodes, [np.zeros(len(o) - 1, np.int64) for o in episodes], seeds=[1, 2])
    assert script.gains(data, np.arange(2), wood) == [(0, 1), (0, 3), (0, 5)]
    assert script.gains(data, np.array([1]), wood) == []


def test_goal_reaching_benchmark_tests_every_kind_in_each_condition(tiny_run, tmp_path, monkeypatch):

    script = _load_benchmark("goal_reaching")
    out = tmp_path / "reach.md"
    monkeypatch.setattr(sys, "argv", ["goal_reaching.py", "--run-dir", str(tiny_run), "--trials", "1",
                                      "--horizon", "3", "--out", str(out)])
    assert script.main() == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert [row["kind"] for row in record["rows"]] == list(script.KINDS)
    assert record["held_out_episodes"] >= 1
    for row in record["rows"]:
        for condition in script.CONDITIONS:
            assert row[condition]["trials"] <= min(1, row["events"])
            assert row[condition]["rate"] is None or 0.0 <= row[condition]["rate"] <= 1.0
    assert sum(row[script.CONDITIONS[0]]["trials"] for row in record["rows"]) >= 1  # the tiny play gains something
    assert all(0 <= row["cluster_goals_holding"] <= 8 for row in record["rows"])  # the tiny run has 8 goals
    assert "nearest cluster goal" in out.read_text() and "goal_reaching.py" in out.read_text()


def test_sharded_envs_step_as_the_one_process_batched_envs_do(tiny_run):
    """`--subproc` for PTGM: 3 environments over 2 worker processes, each batching its share, give the same
    observations, rewards and infos as the one-process GoalSelectionVecEnv with the same seeds (a deterministic
    low level: no random draw is involved), and leave no process behind."""
    from ptgm.hrl.sharded import ShardedVecEnv, shard_sizes
    from ptgm.methods import get_method

    assert shard_sizes(5, 2) == [3, 2] and shard_sizes(2, 8) == [1, 1] and shard_sizes(4, 1) == [4]
    method = get_method("ptgm")
    settings = dict(run_dir=str(tiny_run), n_envs=3, deterministic_low_level=True, seed=3)
    pieces = method.load_pieces(TrainConfig(**settings))
    one = method.make_vec_env(TrainConfig(**settings), pieces)
    sharded = method.make_vec_env(TrainConfig(**settings, subproc=True), pieces)
    try:
        assert isinstance(sharded, ShardedVecEnv) and sharded.num_envs == 3
        assert sharded.observation_space == one.observation_space and sharded.action_space == one.action_space
        np.testing.assert_array_equal(sharded.reset(), one.reset())
        rng = np.random.default_rng(0)
        for _ in range(30):  # past some episode ends (the tiny run's collect_wood is quick)
            actions = rng.integers(0, pieces.n_goals, 3)
            obs_a, reward_a, done_a, infos_a = one.step(actions)
            obs_b, reward_b, done_b, infos_b = sharded.step(actions)
            np.testing.assert_array_equal(obs_b, obs_a)
            np.testing.assert_array_equal(reward_b, reward_a)
            np.testing.assert_array_equal(done_b, done_a)
            assert [(i["env_steps"], i["goal"]) for i in infos_b] == [(i["env_steps"], i["goal"]) for i in infos_a]
        assert sharded.get_attr("observation_space", [0, 2]) == one.get_attr("observation_space", [0, 2])
        assert sharded.env_method("get_wrapper_attr", "spec", indices=[1, 2]) == one.env_method(
            "get_wrapper_attr", "spec", indices=[1, 2])
        with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):  # raised in a worker, here
            sharded.get_attr("no_such_thing", [2])
        assert sharded.env_is_wrapped(gym.Wrapper) == one.env_is_wrapped(gym.Wrapper)
        sharded.set_attr("marker", 7, [1, 2])
        assert sharded.get_attr("marker", [1, 2]) == [7, 7]
    finally:
        one.close()
        sharded.close()
    assert not any(process.is_alive() for process in sharded.processes)
