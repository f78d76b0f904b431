"""Scripted Franka Kitchen controller: subtasks completed by the environment's own check."""

import gymnasium as gym
import numpy as np
import pytest

from ptgm.domains.kitchen.controller import (
    SUBTASKS,
    KitchenScriptedController,
    perform_subtasks,
    play_episode_plan,
)
from ptgm.domains.kitchen.env import KitchenEnv


def _run_subtask(subtask: str, seed: int = 0, budget: int = 250) -> tuple[bool, bool]:
    """(env reported the subtask complete, controller's own check agreed at that step) from the initial pose."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FrankaKitchen-v1", tasks_to_complete=[subtask], terminate_on_tasks_completed=False,
                   max_episode_steps=budget, disable_env_checker=True)
    obs, _ = env.reset(seed=seed)
    controller = KitchenScriptedController(env, np.random.default_rng(seed))  # default action noise
    controller.start(subtask)
    for _ in range(budget):
        action = controller(obs["observation"])
        assert action.shape == (9,) and action.dtype == np.float32 and np.abs(action).max() <= 1.0
        obs, _, _, _, info = env.step(action)
        if subtask in info["step_task_completions"]:
            return True, controller.subtask_completed(obs["observation"])
        if controller.done:
            break
    return False, False


@pytest.mark.parametrize("subtask", ["microwave", "light switch"])
def test_subtask_succeeds_from_the_initial_pose(subtask):
    completed, agreed = _run_subtask(subtask)
    assert completed, f"{subtask} not completed within the step budget"
    assert agreed  # subtask_completed uses the environment's threshold on the observation


def test_controller_drives_ptgms_wrapper_too():
    env = KitchenEnv(None)
    obs, _ = env.reset(seed=1)
    controller = KitchenScriptedController(env, np.random.default_rng(1), action_noise=0.05)
    controller.start("light switch")
    assert not controller.done and not controller.subtask_completed(obs)
    for _ in range(250):
        obs, _, _, _, info = env.step(controller(obs))
        if controller.done:
            break
    assert controller.done and "light switch" in info["completed_subtasks"]


def test_perform_subtasks_records_the_episode_and_when_each_subtask_lands():
    env = KitchenEnv("light switch,microwave")
    observations, completed = perform_subtasks(env, ["light switch", "microwave"], np.random.default_rng(2), seed=2)
    assert observations.shape[1] == env.observation_space.shape[0]
    assert set(completed) == {"light switch", "microwave"}
    assert 0 < completed["light switch"] < completed["microwave"] == len(observations) - 1  # the task's end


def test_unknown_subtask_is_rejected_with_the_known_names():
    env = KitchenEnv(None)
    controller = KitchenScriptedController(env, np.random.default_rng(0))
    with pytest.raises(ValueError, match="toaster.*microwave"):
        controller.start("toaster")


def test_play_plans_are_two_to_four_distinct_subtasks():
    rng = np.random.default_rng(0)
    plans = [play_episode_plan(rng) for _ in range(200)]
    assert all(2 <= len(p) <= 4 and len(set(p)) == len(p) and set(p) <= set(SUBTASKS) for p in plans)
    assert {len(p) for p in plans} == {2, 3, 4}


def test_play_like_d4rls_complete_partial_and_mixed_datasets():
    rng = np.random.default_rng(0)
    target = ("microwave", "kettle", "bottom burner", "light switch")
    whole = lambda plan: set(target) <= set(plan)  # noqa: E731
    assert all(play_episode_plan(rng, "complete", target) == list(target) for _ in range(20))
    partial = [play_episode_plan(rng, "partial", target) for _ in range(300)]
    assert 0.2 < np.mean([p == list(target) for p in partial]) < 0.4  # some episodes do the whole target...
    assert all(p == list(target) or not whole(p) for p in partial)  # ...the others never all of it
    mixed = [play_episode_plan(rng, "mixed", target) for _ in range(300)]
    assert not any(whole(p) for p in mixed) and all(set(p) & set(target) for p in mixed)
    for name in target:  # every target subtask appears in mixed play
        assert any(name in p for p in mixed)


def test_generate_records_the_kind_of_play_asked_for(tmp_path, capsys):
    import json

    from ptgm.cli import main

    run = tmp_path / "run"
    assert main(["generate", "--domain", "kitchen", "--run-dir", str(run), "--play", "complete", "--transitions",
                 "400", "--workers", "1"]) == 0
    summary = json.loads((run / "data" / "DONE.json").read_text())["summary"]
    assert summary["coverage"]["microwave"] >= 0.5  # the first subtask of mkbl, every episode's first
    assert main(["generate", "--domain", "kitchen", "--run-dir", str(run), "--play", "expert"]) == 2
    assert "Unknown --play 'expert' for kitchen; choose random, complete, partial, mixed." in capsys.readouterr().err
    assert main(["generate", "--run-dir", str(tmp_path / "c"), "--play", "complete"]) == 2
    assert "leave --play unset" in capsys.readouterr().err
