"""The Gymnasium ids of ptgm's envs: registration, Gymnasium's env checker, and parity with the env classes."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # Kitchen renders with MuJoCo; osmesa is not installed

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

from ptgm.envs import CRAFTER_ID, KITCHEN_ID, register_envs

# (id, a real task, "module:Class" of the env built directly)
ENVS = [
    pytest.param(CRAFTER_ID, "collect_stone", "ptgm.domains.crafter.env:CrafterEnv", id="crafter"),
    pytest.param(KITCHEN_ID, "mkbl", "ptgm.domains.kitchen.env:KitchenEnv", id="kitchen"),
]

# check_env's advice on an unbounded Box, not an error: Kitchen's observation holds joint
# velocities, which have no bound (FrankaKitchen-v1 declares the same -inf..inf space).
ALLOWED_WARNINGS = {
    KITCHEN_ID: ("observation space minimum value is -infinity", "observation space maximum value is infinity"),
}


@pytest.fixture(scope="module", autouse=True)
def _registered():
    register_envs()


def _load(entry_point: str) -> type[gym.Env]:
    module, name = entry_point.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


def _rollout(env: gym.Env, seed: int, steps: int) -> list:
    """Reset with ``seed`` and take ``steps`` actions sampled from a ``seed``-seeded action space."""
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def test_register_is_idempotent_and_imports_nothing_heavy():
    # A fresh interpreter: this test process has imported torch and the envs already.
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"  # gymnasium warns when an id is registered twice
        "from ptgm.envs import register_envs\n"
        "register_envs(); register_envs()\n"
        "import gymnasium as gym\n"
        f"assert {CRAFTER_ID!r} in gym.registry and {KITCHEN_ID!r} in gym.registry\n"
        "heavy = ('torch', 'crafter', 'mujoco', 'gymnasium_robotics', 'ptgm.domains')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"registering imported {proc.stdout.strip()}"
    register_envs()  # and again in this process, where the ids already exist
    assert gym.spec(CRAFTER_ID).entry_point == "ptgm.domains.crafter.env:CrafterEnv"
    assert gym.spec(KITCHEN_ID).entry_point == "ptgm.domains.kitchen.env:KitchenEnv"


@pytest.mark.parametrize(("env_id", "task", "entry_point"), ENVS)
def test_passes_gymnasium_env_checker(env_id, task, entry_point):
    env = gym.make(env_id, task=task)
    assert isinstance(env.unwrapped, _load(entry_point))
    # check_env wants the env itself (it warns about wrappers); it also makes the env again
    # from its spec, with every declared render mode, so rendering is checked too.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    # The passive checks (e.g. an observation outside its space) only warn, so any warning fails.
    allowed = ALLOWED_WARNINGS.get(env_id, ())
    problems = [str(w.message) for w in caught if not any(a in str(w.message) for a in allowed)]
    assert not problems, problems
    env.close()


@pytest.mark.parametrize(("env_id", "task", "entry_point"), ENVS)
def test_made_env_behaves_like_the_class(env_id, task, entry_point):
    made = gym.make(env_id, task=task)
    direct = _load(entry_point)(task)
    for seed in (0, 7):
        got, want = _rollout(made, seed, 25), _rollout(direct, seed, 25)
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert data_equivalence(a, b, exact=True), f"seed {seed}, step {i}: {a} != {b}"
        # and the same again from the same seed, over many steps (check_env steps once)
        again = _rollout(made, seed, 25)
        assert all(data_equivalence(a, b, exact=True) for a, b in zip(again, got)), f"seed {seed} not reproducible"
    _, info = made.reset(seed=0)
    assert info["is_success"] is False
    _, reward, _, _, info = made.step(made.action_space.sample())
    assert isinstance(reward, float) and "is_success" in info
    made.close()
    direct.close()


def test_crafter_task_is_the_env_task():
    env = gym.make(CRAFTER_ID, task="collect_stone")
    obs, _ = env.reset(seed=0)
    task = env.unwrapped.task
    assert task.achievement == "collect_stone" and task.start_inventory == {"wood_pickaxe": 1}
    from ptgm.domains.crafter.env import INVENTORY_OFFSET, ITEMS

    assert obs[INVENTORY_OFFSET + ITEMS.index("wood_pickaxe")] == 1  # the task's start inventory is applied


@pytest.mark.parametrize(("env_id", "task", "entry_point"), ENVS)
def test_time_limit_is_the_envs_own(env_id, task, entry_point):
    env = gym.make(env_id, task=task)
    # No TimeLimit wrapper on top of the env's own truncation.
    assert env.spec.max_episode_steps is None
    wrappers = []
    inner = env
    while isinstance(inner, gym.Wrapper):
        wrappers.append(type(inner))
        inner = inner.env
    assert gym.wrappers.TimeLimit not in wrappers
    # max_steps= reaches the env, which truncates exactly there.
    env = gym.make(env_id, task=task, max_steps=4)
    env.reset(seed=0)
    noop = 0 if isinstance(env.action_space, gym.spaces.Discrete) else np.zeros(env.action_space.shape, np.float32)
    flags = [env.step(noop)[3] for _ in range(4)]
    assert flags == [False, False, False, True]
    env.close()


def test_crafter_task_limits_pass_through():
    # Tasks have different limits; one registration-wide max_episode_steps would override them.
    assert gym.make(CRAFTER_ID, task="collect_stone").unwrapped.max_steps == 500
    assert gym.make(CRAFTER_ID, task="collect_iron").unwrapped.max_steps == 2000  # from an empty inventory


@pytest.mark.parametrize(("env_id", "task", "entry_point"), ENVS)
def test_unknown_task_is_rejected(env_id, task, entry_point):
    with pytest.raises(ValueError, match="Unknown"):
        gym.make(env_id, task="no_such_task")
