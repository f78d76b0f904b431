"""The interface of a downstream method: how to build its environment and learner, and how to load it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from ptgm.hrl.wrapper import ScaledObservation
from ptgm.settings import TrainConfig
from ptgm.utils import PTGMError, rerun_command, short_reason

#: A thunk making one raw task environment (already in a Monitor), as the method's wrappers expect it.
TaskEnvFn = Callable[[], gym.Env]


class Plan:
    """What an agent does between two high-level decisions: ``steps`` environment actions from ``act(obs)``.

    The default is a flat learner's: its one action, once.
    """

    def __init__(self, act: Callable[[np.ndarray], Any], steps: int = 1, info: dict | None = None):
        self._act, self.steps, self.info, self.taken = act, steps, info or {"goal": -1, "caption": ""}, 0

    @property
    def done(self) -> bool:
        return self.taken >= self.steps

    def act(self, observation: np.ndarray):
        self.taken += 1
        return self._act(observation)


class TaskMonitor(Monitor):
    """SB3's Monitor that keeps the task's success flag (None when the task reports none) and what the episode
    achieved (Crafter's achievements, Kitchen's subtasks; empty when the task reports none) in each finished
    episode's record."""

    def __init__(self, env: gym.Env):
        super().__init__(_EpisodeKeys(env), info_keywords=("is_success", "episode_achievements"))


class _EpisodeKeys(gym.Wrapper):
    """Puts ``is_success`` and ``episode_achievements`` into the info of an episode's last step."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = dict(info)
            info.setdefault("is_success", None)
            info.setdefault("episode_achievements", tuple(info.get("episode_task_completions", ())))
        return obs, reward, terminated, truncated, info


def task_env_fn(config: TrainConfig, rank: int) -> TaskEnvFn:
    """A thunk making task environment ``rank`` of ``config``'s domain and task, in a Monitor that copies the
    task's success flag into each finished episode's record."""

    def thunk() -> gym.Env:
        from ptgm.domains import domain_of

        torch.set_num_threads(1)
        domain = domain_of(config)
        inventory = domain.parse_start_inventory(config.start_inventory)
        env = TaskMonitor(domain.make_env(config.task, **({"start_inventory": inventory} if inventory else {})))
        env.action_space.seed(config.seed * 1000 + rank)
        return env

    return thunk


def seeded(env: gym.Env, config: TrainConfig, rank: int) -> gym.Env:
    """``env`` reset with environment ``rank``'s seed, its action space seeded too."""
    env.reset(seed=config.seed * 1000 + rank)
    env.action_space.seed(config.seed * 1000 + rank)
    return env


class Method:
    """One downstream method of `ptgm train`.

    Subclasses set the attributes and override what differs; the defaults describe a flat learner on the task
    environment's own actions, observations scaled by :class:`~ptgm.hrl.wrapper.ScaledObservation`.
    """

    #: The name `--method` takes (the module's name, underscores read as dashes).
    name: str = ""
    #: One line for listings.
    description: str = ""
    #: Which pre-trained pieces it acts with: ``"goals"`` (low-level policy, codebook, prior), ``"skills"``
    #: (SPiRL's skill model), ``"data"`` (the play dataset alone) or ``None`` (it learns from scratch).
    pieces: str | None = None
    #: Its learner acts every k (or H) environment steps: it takes the domain's high-level discount and
    #: 64-step PPO rollouts unless told otherwise.
    high_level: bool = False
    #: A PTGM variant: it takes the domain's PPO ``target_kl`` unless told otherwise.
    ptgm_variant: bool = False
    #: Its high-level actions are the codebook's cluster goals (what `ptgm report` shows).
    picks_cluster_goals: bool = False
    #: It needs a continuous (Box) action space in the task environment.
    continuous_actions: bool = False
    #: `ptgm tune`'s grid: each named `ptgm train` setting at the method's default or at this alternative, every
    #: combination (2^n configurations, the first the method's defaults). Every method names as many settings,
    #: so each gets the same tuning budget: the learning rate, and one of its own (most: its regulariser's weight).
    tuning_alternatives: tuple[tuple[str, object], ...] = (("learning_rate", 1e-4), ("ent_coef", 0.0))

    # -- pieces ---------------------------------------------------------------------------------------------
    def load_pieces(self, config: TrainConfig, check_dataset: bool = True) -> Any:
        """The frozen pre-trained pieces the method acts with (None for methods from scratch).

        With ``check_dataset`` pieces that record their dataset are checked against it (which may read it).
        """
        return None

    # -- environments ---------------------------------------------------------------------------------------
    def wrap_env(self, env: gym.Env, config: TrainConfig, pieces: Any) -> gym.Env:
        """The environment the learner sees, around one raw task environment."""
        return ScaledObservation(env)

    def make_env(self, config: TrainConfig, pieces: Any, rank: int = 0,
                 task_env: TaskEnvFn | None = None) -> gym.Env:
        """One wrapped environment (for evaluation, or as one of the training environments)."""
        raw = (task_env or task_env_fn(config, rank))()
        self.check_action_space(raw.action_space, config)  # the task's own actions, before any wrapper
        return seeded(self.wrap_env(raw, config, pieces), config, rank)

    def make_vec_env(self, config: TrainConfig, pieces: Any,
                     task_envs: list[TaskEnvFn] | None = None) -> VecEnv:
        """The ``config.n_envs`` training environments (``task_envs`` makes the raw ones; default: the domain's)."""
        task_envs = task_envs or [task_env_fn(config, rank) for rank in range(config.n_envs)]
        if config.subproc:  # each subprocess loads its own copy of the pieces
            fns = [_SubprocEnvFn(self.name, config, rank, fn) for rank, fn in enumerate(task_envs)]
            return SubprocVecEnv(fns)
        return DummyVecEnv([lambda rank=rank, fn=fn: self.make_env(config, pieces, rank, fn)
                            for rank, fn in enumerate(task_envs)])

    def check_domain(self, domain: Any) -> None:
        """A clear error, as soon as the settings are made, when the domain's actions are not ones this method
        can act in (:meth:`check_action_space` checks each task environment again)."""
        if self.continuous_actions and not isinstance(domain.action_space, gym.spaces.Box):
            raise PTGMError(f"--method {self.name} needs continuous (Box) actions; the {domain.name} domain has "
                            f"{domain.action_space}. Use --method ppo for a flat baseline there.")

    def check_action_space(self, space: gym.Space, config: TrainConfig) -> None:
        """A clear error when the task's action space is not one this method can act in."""
        if self.continuous_actions and not isinstance(space, gym.spaces.Box):
            raise PTGMError(f"--method {self.name} needs continuous (Box) actions; the {config.domain} task "
                            f"{config.task} has {space}. Use --method ppo for a flat baseline.")

    # -- learners -------------------------------------------------------------------------------------------
    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces: Any,
                   tensorboard_log: str | None = None) -> BaseAlgorithm:
        """A fresh learner on ``vec_env``; before any RL step its policy is what pre-training alone gives."""
        raise NotImplementedError

    def model_class(self) -> type[BaseAlgorithm]:
        """The Stable-Baselines3 class of the learner (what :meth:`load_model` loads)."""
        raise NotImplementedError

    def load_model(self, config: TrainConfig, path: Path | io.BufferedIOBase, pieces: Any,
                   env: VecEnv | None = None) -> BaseAlgorithm:
        """A saved learner (a path, or a file object), with the frozen pieces its class keeps outside the zip."""
        if isinstance(path, (str, Path)) and not Path(path).exists():
            raise PTGMError(f"No trained {self.name} learner at {path}. Train it with `ptgm train --method {self.name}`.")
        try:
            return self.model_class().load(path, env=env, device=learner_device(config), **self.frozen_objects(pieces))
        except PTGMError:
            raise
        except Exception as exc:  # SB3 raises many kinds for a truncated or foreign zip
            raise PTGMError(f"The trained {self.name} learner at {path} is corrupt or unreadable ({short_reason(exc)}). "
                            f"Retrain it with `{rerun_command('train', config)}`.") from exc

    def frozen_objects(self, pieces: Any) -> dict:
        """Keyword arguments that hand a loaded learner the frozen pieces it does not save."""
        return {}

    def hidden(self, config: TrainConfig, pieces: Any) -> list[int]:
        """The learner's hidden widths: the configured ones, else 256 256."""
        return list(config.hidden or (256, 256))

    # -- acting in the task environment (the agent's predict) -------------------------------------------------
    def plan(self, high_action: Any, observation: np.ndarray, config: TrainConfig, pieces: Any) -> Plan:
        """What the learner's action ``high_action``, chosen at raw ``observation``, does in the task."""
        action = high_action.item() if isinstance(high_action, np.ndarray) and high_action.ndim == 0 else high_action
        return Plan(lambda obs: action)

    # -- saving the pieces inside an agent's file -------------------------------------------------------------
    def save_pieces(self, pieces: Any) -> bytes | None:
        """The frozen pieces as bytes for an agent's file (None: the learner needs none to act)."""
        if pieces is None or self.pieces == "data":  # cloned into the learner's own weights
            return None
        buffer = io.BytesIO()
        torch.save(pieces, buffer)
        return buffer.getvalue()

    def load_saved_pieces(self, data: bytes) -> Any:
        """The pieces :meth:`save_pieces` wrote."""
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


class _SubprocEnvFn:
    """A picklable thunk for SubprocVecEnv: the subprocess loads the method's pieces itself."""

    def __init__(self, method: str, config: TrainConfig, rank: int, task_env: TaskEnvFn):
        self.method, self.config, self.rank, self.task_env = method, config, rank, task_env

    def __call__(self) -> gym.Env:
        from ptgm.methods import get_method

        method = get_method(self.method)
        return method.make_env(self.config, method.load_pieces(self.config, check_dataset=False), self.rank,
                               self.task_env)


def sb3_common_kwargs(config: TrainConfig, tensorboard_log: str | None) -> dict:
    """The settings every Stable-Baselines3 learner of `ptgm train` shares."""
    return dict(learning_rate=config.learning_rate, gamma=config.gamma, seed=config.seed, verbose=0,
                device=learner_device(config), tensorboard_log=tensorboard_log)


def learner_device(config: TrainConfig) -> str:
    """The torch device of the learner (``config.device``; ``auto``: a GPU when there is one)."""
    from ptgm.distributed import resolve_device

    return str(resolve_device(getattr(config, "device", "auto")))


def ppo_kwargs(config: TrainConfig, hidden: list[int], tensorboard_log: str | None) -> dict:
    """Stable-Baselines3 PPO's settings from ``config`` (actor and critic of widths ``hidden``, ReLU)."""
    return dict(
        sb3_common_kwargs(config, tensorboard_log), n_steps=config.n_steps,
        # SB3 warns when a minibatch is larger than the rollout; tiny runs (tests) hit that.
        batch_size=min(config.batch_size, config.n_steps * config.n_envs), n_epochs=config.n_epochs,
        ent_coef=config.ent_coef, target_kl=config.target_kl or None, normalize_advantage=config.normalize_advantage,
        policy_kwargs=dict(net_arch=dict(pi=hidden, vf=hidden), activation_fn=torch.nn.ReLU),
    )


def sac_kwargs(config: TrainConfig, hidden: list[int], tensorboard_log: str | None) -> dict:
    """Stable-Baselines3 SAC's settings from ``config``."""
    return dict(sb3_common_kwargs(config, tensorboard_log), batch_size=256, learning_starts=config.sac_learning_starts,
                policy_kwargs=dict(net_arch=dict(pi=hidden, qf=hidden)))
