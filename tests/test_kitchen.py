"""Franka Kitchen domain: environment, tasks, goal features, and reading D4RL-layout Minari datasets."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ptgm.data.dataset import load_minari
from ptgm.data.generate import load_run_dataset
from ptgm.domains import get_domain
from ptgm.domains.kitchen import GOAL_DIM, KitchenEnv, compose_goal, goal_features
from ptgm.domains.kitchen.env import OBJECT_QPOS_START, OBS_DIM, parse_task
from ptgm.utils import PTGMError


def test_env_passes_the_gymnasium_checker():
    check_env(KitchenEnv("mkbl"), skip_render_check=True)


def test_tasks_parse_presets_lists_and_reject_unknown_names():
    assert parse_task("mkbl") == ("microwave", "kettle", "bottom burner", "light switch")
    assert parse_task("light_switch,microwave") == ("light switch", "microwave")
    with pytest.raises(ValueError, match="Unknown Kitchen subtask 'toaster'"):
        parse_task("microwave,toaster")
    with pytest.raises(ValueError, match="twice"):
        parse_task("microwave,microwave")
    with pytest.raises(ValueError, match="Unknown Kitchen subtask"):
        get_domain("kitchen").check_task("oven")


def _open_microwave(env: KitchenEnv) -> None:
    # Put the door at its goal angle directly in the simulator (qpos 22 is the microwave hinge).
    env.data.qpos[22] = -0.75


def test_reward_is_one_per_completed_subtask_and_the_episode_ends_when_all_are_done():
    env = KitchenEnv("microwave,light_switch")
    env.reset(seed=0)
    _open_microwave(env)
    _, reward, terminated, truncated, info = env.step(np.zeros(9, np.float32))
    assert reward == 1.0 and info["score"] == 1 and not terminated and not truncated
    assert info["step_task_completions"] == ["microwave"]
    _, reward, *_ = env.step(np.zeros(9, np.float32))
    assert reward == 0.0  # a subtask pays once
    env.data.qpos[17:19] = [-0.69, -0.05]  # light switch at its goal
    _, reward, terminated, _, info = env.step(np.zeros(9, np.float32))
    assert reward == 1.0 and terminated and info["is_success"] and info["score"] == 2


def test_ordered_task_only_rewards_the_next_subtask():
    env = KitchenEnv("light_switch,microwave", ordered=True)
    env.reset(seed=0)
    _open_microwave(env)
    _, reward, *_ = env.step(np.zeros(9, np.float32))
    assert reward == 0.0


def test_episode_truncates_at_the_step_limit():
    env = KitchenEnv("mkbl", max_steps=5)
    env.reset(seed=0)
    for _ in range(4):
        assert not env.step(env.action_space.sample())[3]
    assert env.step(env.action_space.sample())[3]


def test_goal_features_are_robot_and_object_joint_positions():
    obs = np.arange(OBS_DIM, dtype=np.float32)[None]
    features = goal_features(obs)
    assert features.shape == (1, GOAL_DIM)
    np.testing.assert_array_equal(features[0], np.r_[np.arange(9), np.arange(18, 39)])
    with pytest.raises(ValueError, match="shape"):
        goal_features(np.zeros((2, 60)))


def test_composed_goal_keeps_what_the_goal_leaves_untouched_and_never_undoes_progress():
    env = KitchenEnv()
    start, _ = env.reset(seed=0)
    # The goal state: arm elsewhere, microwave open, everything else where it starts.
    goal_state = start.copy()
    goal_state[:7] += 0.3
    goal_state[OBJECT_QPOS_START + 13] = -0.7  # microwave hinge (qpos 22)
    # Now: the light switch was turned and the slide cabinet opened, the microwave is still shut.
    now = start.copy()
    now[OBJECT_QPOS_START + 8:OBJECT_QPOS_START + 10] = [-0.69, -0.05]  # light switch (qpos 17, 18)
    now[OBJECT_QPOS_START + 10] = 0.37  # slide cabinet (qpos 19)
    goal = goal_features(goal_state[None])
    composed = compose_goal(goal, now[None])[0]
    np.testing.assert_allclose(composed[:9], goal[0, :9])  # the arm pose is the goal's
    assert composed[22] == pytest.approx(-0.7)  # the goal's own change stays
    np.testing.assert_allclose(composed[17:20], [-0.69, -0.05, 0.37])  # progress is not undone
    # A goal that moved the light switch itself keeps its own value there.
    goal_state[OBJECT_QPOS_START + 8:OBJECT_QPOS_START + 10] = [-0.4, -0.02]
    assert compose_goal(goal_features(goal_state[None]), now[None])[0, 17] == pytest.approx(-0.4)
    # Batches compose row by row, and the input is left alone.
    both = np.concatenate([goal, goal])
    out = compose_goal(both, np.stack([now, start]))
    assert out[0, 19] == pytest.approx(0.37) and out[1, 19] == pytest.approx(goal[0, 19])
    assert both[0, 19] == pytest.approx(goal[0, 19])


def _write_d4rl_layout_dataset(root, dataset_id: str, episodes: int = 2, steps: int = 15) -> None:
    """A small dataset recorded from FrankaKitchen-v1 itself, in the layout of D4RL/kitchen/*-v2.

    Observations are dictionaries (``observation`` 59 values, ``achieved_goal`` and
    ``desired_goal`` per subtask), actions 9 joint velocities, as in the public datasets.
    """
    import gymnasium_robotics
    import minari
    from minari.data_collector import EpisodeBuffer

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FrankaKitchen-v1", tasks_to_complete=list(parse_task("mkbl")), max_episode_steps=steps)
    buffers = []
    for i in range(episodes):
        obs, _ = env.reset(seed=i)
        env.action_space.seed(i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated

        def stack(items):
            if isinstance(items[0], dict):
                return {key: stack([item[key] for item in items]) for key in items[0]}
            return np.stack([np.asarray(item) for item in items])

        buffers.append(EpisodeBuffer(id=i, seed=i, observations=stack(observations), actions=np.stack(actions),
                                     rewards=np.asarray(rewards, np.float64), terminations=np.asarray(terms),
                                     truncations=np.asarray(truncs), infos={}))
    minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=buffers, env=env, algorithm_name="random",
                                       author="ptgm tests", description="D4RL kitchen layout fixture",
                                       data_format="hdf5")


def test_reads_minari_datasets_in_the_d4rl_kitchen_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    _write_d4rl_layout_dataset(tmp_path, "D4RL/kitchen/mixed-v2")
    data = load_run_dataset(tmp_path / "no-run", "D4RL/kitchen/mixed-v2", get_domain("kitchen").dataset_observation_key)
    assert data.n_episodes == 2 and data.n_transitions == 30
    assert data.observations.shape == (32, OBS_DIM) and data.observations.dtype == np.float32
    assert data.actions.shape == (32, 9)
    data.check_observation_size(KitchenEnv().observation_space.shape[0], "the kitchen environment")
    with pytest.raises(PTGMError, match="dictionary observations"):
        load_minari("D4RL/kitchen/mixed-v2")


def test_missing_d4rl_dataset_says_how_to_download_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(PTGMError, match="minari download D4RL/kitchen/partial-v2"):
        load_minari("D4RL/kitchen/partial-v2", observation_key="observation")


def test_render_observation_draws_a_frame():
    domain = get_domain("kitchen")
    env = KitchenEnv()
    obs, _ = env.reset(seed=0)
    try:
        frame = domain.render_observation(obs)
    except Exception as exc:  # no OpenGL (EGL) on this machine
        pytest.skip(f"MuJoCo offscreen rendering unavailable: {exc}")
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8 and frame.std() > 10
