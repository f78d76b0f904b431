"""The Python API: an agent of any method, in the conventions of Stable-Baselines3.

    import gymnasium as gym, ptgm
    pieces = ptgm.Pretrained.load("runs/crafter")
    agent = ptgm.PTGM(lambda: gym.make("ptgm/Crafter-v0", task="collect_stone"), pieces, k=10, kl_coef=0.01)
    agent.learn(total_env_steps=100_000)
    agent.save("stone.zip")
    agent = ptgm.PTGM.load("stone.zip")          # a fresh process needs nothing else
    action, info = agent.predict(obs)             # an environment action; info["goal"] is the goal in force

An agent acts in the *task* environment: every k steps its high-level policy picks a goal (or a skill, or,
for flat methods, the action itself) and in between the frozen low-level policy acts towards it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from ptgm.methods import get_method
from ptgm.methods.base import Method, Plan, TaskEnvFn, TaskMonitor
from ptgm.nets import observation_scale
from ptgm.settings import DEFAULT_K, TrainConfig, settings_from_dict
from ptgm.utils import PTGMError, config_dict

#: Bumped when the layout of a saved agent changes.
AGENT_FORMAT = 1

EnvLike = gym.Env | str | Callable[[], gym.Env]


class EnvStepBudget(BaseCallback):
    """Counts environment (low-level) steps into ``agent.env_steps`` and stops learning at ``budget``."""

    def __init__(self, agent: "Agent", budget: int):
        super().__init__()
        self.agent, self.budget = agent, budget

    def _on_step(self) -> bool:
        self.agent.env_steps += sum(int(info.get("env_steps", 1)) for info in self.locals["infos"])
        return self.agent.env_steps < self.budget


class DivergenceCheck(BaseCallback):
    """Stops learning with a clear error as soon as an update leaves the learner's weights NaN or infinite (the next
    rollout would fail inside torch.distributions with no word of why), or its last losses are."""

    #: Environment steps between checks (off-policy learners start a "rollout" every step).
    every = 1000

    def __init__(self, agent: "Agent"):
        super().__init__()
        self.agent = agent
        self._next_check = 0

    def _on_rollout_start(self) -> None:
        if isinstance(self.model, OffPolicyAlgorithm):
            if self.agent.env_steps < self._next_check:
                return
            self._next_check = self.agent.env_steps + self.every
        losses = {key: value for key, value in self.model.logger.name_to_value.items()
                  if key.startswith("train/") and key.endswith("loss")}
        bad = [name for name, p in self.model.policy.named_parameters() if not torch.isfinite(p).all()]
        bad += [f"{key} = {value}" for key, value in losses.items() if not np.isfinite(value)]
        if bad:
            raise PTGMError(f"The {self.agent.method.name} learner diverged after {self.agent.env_steps} env steps "
                            f"({', '.join(bad[:3])} not finite). Lower --learning-rate and retrain with --force.")

    def _on_step(self) -> bool:
        return True


class Agent:
    """A downstream learner of one method (``ptgm``, ``ptgm-sac``, ``ppo``, ...), its frozen pre-trained pieces
    and its settings.

    Args:
        method: the method's name (see :func:`ptgm.methods.method_names`) or a :class:`~ptgm.methods.base.Method`.
        config: the training settings (:class:`~ptgm.settings.TrainConfig`).
        pieces: the frozen pieces the method acts with (:class:`~ptgm.hrl.pretrained.Pretrained` for the PTGM
            methods); ``None`` loads them from ``config.run_dir`` when the method uses any.
        env: the task environment: a Gymnasium id, a function making one (``config.n_envs`` copies train side by
            side), or one environment (then ``n_envs`` must be 1); ``None`` makes the domain's ``config.task``.
        model: an existing learner (from :meth:`load`); ``None`` builds a fresh one.
        tensorboard_log: TensorBoard folder of the learner.
    """

    def __init__(self, method: str | Method, config: TrainConfig, pieces: Any = None, env: EnvLike | None = None,
                 *, model=None, tensorboard_log: str | None = None, observation_scale_: np.ndarray | None = None):
        self.method = get_method(method) if isinstance(method, str) else method
        self.config = config
        self.pieces = pieces if pieces is not None or self.method.pieces is None else self.method.load_pieces(config)
        self.env = env
        self.env_steps = 0
        self._scale = observation_scale_
        self._plan: Plan | None = None
        self.model = model
        if model is None:
            self.model = self.method.make_model(config, self.make_vec_env(), self.pieces, tensorboard_log)
        if self._scale is None:  # predict() scales raw observations as the learner's wrappers do
            self._scale = observation_scale(self._raw_observation_space())

    # -- environments -----------------------------------------------------------------------------------------
    def _task_env_fns(self, n: int) -> list[TaskEnvFn]:
        """Thunks making ``n`` raw task environments in Monitors (the domain's task when no env was given)."""
        if self.env is None:
            from ptgm.methods.base import task_env_fn

            return [task_env_fn(self.config, rank) for rank in range(n)]
        if isinstance(self.env, gym.Env):
            if n > 1:
                raise PTGMError(f"One environment instance cannot train {n} environments side by side: pass a "
                                "function that makes one (e.g. `lambda: gym.make(ID)`) or n_envs=1.")
            env = self.env
            return [lambda: _monitored(env)]
        make = (lambda: gym.make(self.env)) if isinstance(self.env, str) else self.env
        return [lambda: _monitored(make()) for _ in range(n)]

    def _raw_observation_space(self) -> gym.Space:
        """The task environment's own observation space (an environment made to read it is closed again)."""
        if isinstance(self.env, gym.Env):
            return self.env.observation_space
        env = self._task_env_fns(1)[0]()
        space = env.observation_space
        env.close()
        return space

    def make_vec_env(self):
        """The training environments the learner steps (the method's wrappers around the task environments)."""
        return self.method.make_vec_env(self.config, self.pieces, self._task_env_fns(self.config.n_envs))

    def make_env(self, rank: int = 0) -> gym.Env:
        """One wrapped environment as the learner sees it (for evaluation)."""
        return self.method.make_env(self.config, self.pieces, rank, self._task_env_fns(1)[0])

    # -- learning ---------------------------------------------------------------------------------------------
    def learn(self, total_env_steps: int, callback: BaseCallback | None = None, reset_num_timesteps: bool = True,
              tb_log_name: str | None = None) -> "Agent":
        """Train until ``total_env_steps`` environment (low-level) steps have been taken in all, counting the
        steps of earlier calls (``agent.env_steps``)."""
        if total_env_steps < 1:
            raise PTGMError(f"total_env_steps must be at least 1, got {total_env_steps}.")
        callbacks = [EnvStepBudget(self, total_env_steps), DivergenceCheck(self)] + (
            [callback] if callback is not None else [])
        try:
            # SB3 counts learner steps; the budget callback stops at the env-step budget long before this cap.
            self.model.learn(total_timesteps=10 * total_env_steps, callback=CallbackList(callbacks),
                             reset_num_timesteps=reset_num_timesteps, tb_log_name=tb_log_name or self.method.name)
        except ValueError as exc:  # torch.distributions refusing NaN parameters between two divergence checks
            if "invalid values" not in str(exc):
                raise
            raise PTGMError(f"The {self.method.name} learner diverged after {self.env_steps} env steps (its policy "
                            "outputs became NaN). Lower --learning-rate and retrain with --force.") from exc
        return self

    # -- acting -----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the goal in force (call at the start of each episode, or pass ``episode_start=True``)."""
        self._plan = None

    def predict(self, observation: np.ndarray, deterministic: bool = False,
                episode_start: bool = False) -> tuple[np.ndarray | int, dict]:
        """The environment action for one raw observation of the task, and what is in force.

        Every k steps (and at an episode's start) the high-level policy picks its next goal; ``deterministic``
        takes its most likely one. ``info`` holds ``goal`` (the cluster goal's index, -1 for other methods),
        ``goal_step`` (steps since it was chosen) and a ``caption`` for pictures.
        """
        if episode_start or self._plan is None or self._plan.done:
            scaled = np.asarray(observation, np.float32).reshape(-1) / self._scale
            high_action, _ = self.model.predict(scaled.reshape(np.shape(observation)), deterministic=deterministic)
            self._plan = self.method.plan(high_action, np.asarray(observation), self.config, self.pieces)
        return self._plan.act(np.asarray(observation)), dict(self._plan.info, goal_step=self._plan.taken)

    def evaluate(self, episodes: int = 100, deterministic: bool = False) -> dict:
        """Success rate and returns on fresh episodes (seeds disjoint from training's), as `ptgm train` reports."""
        from ptgm.train import evaluate_model

        return evaluate_model(self.config, self.model, self.pieces, episodes=episodes, deterministic=deterministic,
                              env=self.make_env(10_000))

    # -- one file ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write everything needed to act to one zip file (settings, learner, frozen pieces); atomic."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        learner = io.BytesIO()
        self.model.save(learner)
        meta = {"format": AGENT_FORMAT, "method": self.method.name, "config": config_dict(self.config),
                "env_steps": self.env_steps, "observation_scale": self._scale.tolist()}
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr("agent.json", json.dumps(meta, indent=2))
            archive.writestr("learner.zip", learner.getvalue())
            pieces = self.method.save_pieces(self.pieces)
            if pieces is not None:
                archive.writestr("pieces.pt", pieces)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, env: EnvLike | None = None) -> "Agent":
        """An agent saved by :meth:`save`; ``env`` (optional) is the environment it learns in if trained on."""
        path = Path(path)
        if not path.exists():
            raise PTGMError(f"No saved agent at {path}.")
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("agent.json"))
                learner = archive.read("learner.zip")
                pieces_bytes = archive.read("pieces.pt") if "pieces.pt" in archive.namelist() else None
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
            raise PTGMError(f"{path} is not a saved ptgm agent or is damaged ({exc}). Save it again with "
                            "Agent.save (or `ptgm train --force`).") from exc
        if meta.get("format") != AGENT_FORMAT:
            raise PTGMError(f"{path} was saved in agent format {meta.get('format')}, this ptgm reads "
                            f"{AGENT_FORMAT}. Save it again with this version.")
        method = get_method(meta["method"])
        config = settings_from_dict(TrainConfig, meta["config"])
        pieces = method.load_saved_pieces(pieces_bytes) if pieces_bytes is not None else None
        model = method.load_model(config, io.BytesIO(learner), pieces)
        agent = cls.__new__(cls)  # subclasses (PTGM) take other constructor arguments; the state is Agent's
        Agent.__init__(agent, method, config, pieces, env, model=model,
                       observation_scale_=np.asarray(meta["observation_scale"], np.float32))
        agent.env_steps = int(meta.get("env_steps", 0))
        if env is not None:
            agent.model.set_env(agent.make_vec_env())
        return agent


class PTGM(Agent):
    """PTGM's agent: a high-level learner over the N cluster goals of ``pieces``, regularised towards their
    goal prior, the frozen low-level policy acting k steps towards each goal.

    Args:
        env: the task environment (see :class:`Agent`); ``None``: the domain's ``task``.
        pieces: the pre-trained pieces (:meth:`Pretrained.load <ptgm.hrl.pretrained.Pretrained.load>`).
        k: environment steps per high-level step.
        kl_coef: α, the weight of KL(prior ‖ policy) in the reward (PPO learner).
        learner: ``"ppo"`` (the paper's Minecraft learner) or ``"sac"`` (discrete SAC, its Kitchen learner).
        **settings: any other field of :class:`~ptgm.settings.TrainConfig` (``n_envs``, ``learning_rate``, ...).
    """

    LEARNERS = {"ppo": "ptgm", "sac": "ptgm-sac"}

    def __init__(self, env: EnvLike | None, pieces, k: int = DEFAULT_K, kl_coef: float = 0.01, learner: str = "ppo",
                 **settings):
        if learner not in self.LEARNERS:
            raise PTGMError(f"Unknown learner {learner!r}; choose one of {', '.join(self.LEARNERS)}.")
        if isinstance(env, gym.Env):
            settings.setdefault("n_envs", 1)
        task = settings.pop("task", None) or _task_of(env)
        config = TrainConfig(domain=pieces.domain, task=task, method=self.LEARNERS[learner], k=k, kl_coef=kl_coef,
                             **settings)
        super().__init__(config.method, config, pieces, env, tensorboard_log=settings.get("tensorboard_log"))


def _task_of(env: EnvLike | None) -> str | None:
    """The ``task`` an environment was made with (its spec's keyword), if it says."""
    spec = env.spec if isinstance(env, gym.Env) else gym.spec(env) if isinstance(env, str) else None
    return (spec.kwargs or {}).get("task") if spec is not None else None


def _monitored(env: gym.Env) -> gym.Env:
    """``env`` in a Monitor that records each episode (and the task's success flag where it reports one)."""
    return env if isinstance(env, Monitor) else TaskMonitor(env)
