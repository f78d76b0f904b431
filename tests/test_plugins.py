"""Plug-ins from another package: a domain and a method found through entry points, with no edit to ptgm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN_MODULE = '''
"""A tiny ptgm plug-in: Gymnasium's CartPole as a domain and SB3's A2C as a method."""

import gymnasium as gym
import numpy as np
from stable_baselines3 import A2C

from ptgm.domains.base import Domain
from ptgm.methods.base import Method, sb3_common_kwargs


class CartPoleDomain(Domain):
    name = "cartpole"
    default_task = "balance"
    bench_methods = ("a2c", "ppo")

    def task_names(self):
        return ["balance"]

    def make_env(self, task=None, *, seed=None, **kwargs):
        return gym.make("CartPole-v1", max_episode_steps=100)

    def goal_features(self, observations):
        return np.asarray(observations, np.float32)

    def scripted_player(self, env, rng):
        return lambda obs: int(obs[2] > 0)  # push the cart under the pole's lean

    def render_observation(self, observation):
        return np.zeros((8, 8, 3), np.uint8)


class FlatA2C(Method):
    name = "a2c"
    description = "flat A2C from scratch"

    def make_model(self, config, vec_env, pieces=None, tensorboard_log=None):
        return A2C("MlpPolicy", vec_env, **sb3_common_kwargs(config, tensorboard_log))

    def model_class(self):
        return A2C


METHOD = FlatA2C()
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "ptgm-cartpole-plugin"
version = "0.1.0"

[project.entry-points."ptgm.domains"]
cartpole = "ptgm_cartpole:CartPoleDomain"

[project.entry-points."ptgm.methods"]
a2c = "ptgm_cartpole:METHOD"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plug-in package, installed with pip into a folder of its own (put on PYTHONPATH to use it)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    source.mkdir()
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (source / "ptgm_cartpole.py").write_text(PLUGIN_MODULE)
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, timeout=300)
    return site


def ptgm(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ptgm.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_a_plugin_package_adds_a_domain_and_a_method(plugin_site, tmp_path):
    listed = ptgm(plugin_site, "train", "--help", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "cartpole" in listed.stdout and "a2c" in listed.stdout
    trained = ptgm(plugin_site, "train", "--domain", "cartpole", "--method", "a2c", "--env-steps", "400",
                   "--eval-episodes", "3", "--n-envs", "2", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    done = json.loads((tmp_path / "runs/cartpole/rl/balance/a2c-seed0/DONE.json").read_text())
    assert done["summary"]["env_steps"] >= 400 and done["summary"]["eval_episodes"] == 3
    assert done["summary"]["eval_mean_return"] > 0  # CartPole pays 1 per step the pole stays up
    # Without the plug-in on the path, the names are unknown again: one clear line, no traceback.
    missing = subprocess.run([sys.executable, "-m", "ptgm.cli", "train", "--domain", "cartpole"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert missing.returncode == 2 and "invalid choice: 'cartpole'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_bench_runs_plugin_methods_beside_built_in_ones(plugin_site, tmp_path):
    out = tmp_path / "results"
    bench = ptgm(plugin_site, "bench", "--domain", "cartpole", "--seeds", "1", "--env-steps", "300",
                 "--eval-episodes", "2", "--out", str(out), cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr + bench.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["method"] for r in summary["runs"]) == ["a2c", "ppo"]
    assert (tmp_path / "runs/cartpole/logs/train-balance-a2c-seed0.log").exists()
