"""`ptgm train`: downstream RL of any method on one task, checkpointed, evaluated, written to its run folder.

The method (:mod:`ptgm.methods`) says how its environment and learner are built; this module runs it:
resume from a checkpoint, record every training episode, checkpoint atomically, stop at the env-step
budget, evaluate, and save the learner (``model.zip``) and the whole agent in one file (``agent.zip``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import FloatSchedule

from ptgm.methods import get_method
from ptgm.progress import progress
from ptgm.settings import TrainConfig, settings_from_dict, task_label
from ptgm.utils import (
    PTGMError,
    atomic_write_json,
    mark_stage_done,
    prepare_stage,
    rerun_command,
    seed_everything,
    stage_done,
)

logger = logging.getLogger(__name__)


def run_directory(config: TrainConfig) -> Path:
    return Path(config.run_dir) / "rl" / task_label(config.task, config.start_inventory) / (
        config.run_name or f"{config.method}-seed{config.seed}")


class EpisodeRecorder(BaseCallback):
    """Records finished training episodes, logs the rolling score, shows progress and checkpoints.

    The env-step count is the agent's (:class:`~ptgm.agent.EnvStepBudget` updates it before this runs).
    """

    def __init__(self, agent, out: Path, budget: int, checkpoint_every: int, episodes: list[dict] | None = None):
        super().__init__()
        self.agent = agent
        self.out = out
        self.budget = budget
        self.checkpoint_every = checkpoint_every
        self.episodes = episodes or []
        self._next_checkpoint = (agent.env_steps // checkpoint_every + 1) * checkpoint_every
        self.bar = progress(total=budget, initial=agent.env_steps, desc=out.parent.name + "/" + out.name, unit="step")

    @property
    def env_steps(self) -> int:
        return self.agent.env_steps

    def _on_step(self) -> bool:
        self.bar.update(self.env_steps - self.bar.n)
        for info in self.locals["infos"]:
            if "episode" in info:
                ep = info["episode"]
                success = ep.get("is_success")
                success = bool(ep["r"] >= 1.0 if success is None else success)
                self.episodes.append({"env_steps": self.env_steps, "return": float(ep["r"]),
                                      "length": int(ep["l"]), "success": int(success),
                                      "achievements": ";".join(ep.get("episode_achievements") or ())})
                recent = self.episodes[-50:]
                rate = float(np.mean([e["success"] for e in recent]))
                mean_return = float(np.mean([e["return"] for e in recent]))
                self.logger.record("ptgm/success_rate_last50", rate)
                self.logger.record("ptgm/return_last50", mean_return)
                self.model.logger.record("ptgm/env_steps", self.env_steps)
                self.bar.set_postfix(success=f"{rate:.2f}", ret=f"{mean_return:.2f}", episodes=len(self.episodes))
        if self.env_steps >= self._next_checkpoint:
            self._next_checkpoint = (self.env_steps // self.checkpoint_every + 1) * self.checkpoint_every
            self.save_checkpoint()
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record("ptgm/env_steps", self.env_steps)

    def write_episodes(self) -> None:
        tmp = self.out / "episodes.csv.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, EPISODE_FIELDS)
            writer.writeheader()
            writer.writerows(self.episodes)
        os.replace(tmp, self.out / "episodes.csv")

    def save_checkpoint(self) -> None:
        self.write_episodes()
        self.model.save(self.out / "checkpoint.tmp.zip")
        os.replace(self.out / "checkpoint.tmp.zip", self.out / "checkpoint.zip")
        if hasattr(self.model, "save_replay_buffer"):  # off-policy (SAC): resuming needs the buffer too
            self.model.save_replay_buffer(self.out / "replay_buffer.tmp.pkl")
            os.replace(self.out / "replay_buffer.tmp.pkl", self.out / "replay_buffer.pkl")
        atomic_write_json(self.out / "checkpoint.json", {"env_steps": self.env_steps})


class LinearLearningRateDecay(BaseCallback):
    """Before each update, sets the learning rate to ``initial · (1 − env steps / budget)``.

    SB3's own schedules follow its count of (here high-level) timesteps against the cap passed
    to ``learn``, not the env-step budget, so the rate is set from the recorder's env steps. A
    constant schedule object is stored, so checkpoints pickle as usual.
    """

    def __init__(self, initial: float, recorder: EpisodeRecorder):
        super().__init__()
        self.initial = initial
        self.recorder = recorder

    def rate(self) -> float:
        return self.initial * max(1.0 - self.recorder.env_steps / self.recorder.budget, 0.0)

    def _on_rollout_end(self) -> None:
        self.model.lr_schedule = FloatSchedule(self.rate())

    def _on_step(self) -> bool:
        return True


def train(config: TrainConfig) -> dict:
    """Train ``config.method`` on ``config.task`` in its run folder (reused when finished, resumed with
    ``config.resume``); returns the run's summary."""
    from ptgm.agent import Agent

    method = get_method(config.method)
    out = run_directory(config)
    pieces = method.load_pieces(config)
    previous = prepare_stage(out, config, config.force, config.resume, f"train {config.task}/{config.method}",
                             {"pieces": pieces_fingerprint(pieces)})
    if previous is not None:
        return previous
    seed_everything(config.seed)
    ckpt = out / "checkpoint.zip"
    episodes, start_steps = [], 0
    if config.resume and ckpt.exists():
        agent = Agent(method, config, pieces, model=method.load_model(config, ckpt, pieces))
        agent.model.set_env(agent.make_vec_env())
        if isinstance(agent.model, OffPolicyAlgorithm) and (out / "replay_buffer.pkl").exists():
            agent.model.load_replay_buffer(out / "replay_buffer.pkl")
        start_steps = agent.env_steps = json.loads((out / "checkpoint.json").read_text())["env_steps"]
        episodes = [e for e in read_episodes(out / "episodes.csv") if e["env_steps"] <= start_steps]
        logger.info(f"[train] resuming {out} at {start_steps} environment steps")
    else:
        agent = Agent(method, config, pieces, tensorboard_log=str(out / "tb"))
    recorder = EpisodeRecorder(agent, out, config.env_steps, config.checkpoint_every, episodes)
    callbacks = [recorder] + ([LinearLearningRateDecay(config.learning_rate, recorder)] if config.anneal_lr else [])
    start = time.perf_counter()
    agent.learn(config.env_steps, callback=CallbackList(callbacks), reset_num_timesteps=not config.resume)
    wall = time.perf_counter() - start
    recorder.bar.close()
    recorder.write_episodes()
    agent.model.save(out / "model.zip")
    agent.save(out / "agent.zip")
    agent.model.get_env().close()
    evaluation = evaluate_model(config, agent.model, pieces)
    # The benchmark protocol reports both: sampled actions, and each policy's most likely action.
    most_likely = evaluate_model(config, agent.model, pieces, deterministic=True)
    recent = recorder.episodes[-50:]
    summary = {
        "task": config.task, "method": config.method, "seed": config.seed,
        "env_steps": agent.env_steps, "episodes": len(recorder.episodes),
        "train_success_last50": float(np.mean([e["success"] for e in recent])) if recent else 0.0,
        "eval_success_rate": evaluation["success_rate"], "eval_mean_return": evaluation["mean_return"],
        "eval_mean_env_steps": evaluation["mean_env_steps"],
        "eval_subtask_rates": evaluation.get("subtask_rates", {}),
        "eval_most_likely_success_rate": most_likely["success_rate"],
        "eval_most_likely_mean_return": most_likely["mean_return"],
        "eval_most_likely_subtask_rates": most_likely.get("subtask_rates", {}),
        "eval_episodes": evaluation["episodes"], "wall_seconds": wall,
        "env_steps_per_second": (agent.env_steps - start_steps) / max(wall, 1e-9),
    }
    mark_stage_done(out, config, summary)
    (out / "replay_buffer.pkl").unlink(missing_ok=True)
    logger.info(f"[train] {config.task}/{config.method} seed {config.seed}: eval success "
                f"{summary['eval_success_rate']:.2f} sampled, {summary['eval_most_likely_success_rate']:.2f} most likely, after {summary['env_steps']} env steps "
                f"({summary['env_steps_per_second']:.0f} env steps/s)")
    return summary


#: The columns of a run's ``episodes.csv``: one training episode per row; ``achievements`` lists what it unlocked
#: (Crafter's achievements, Kitchen's subtasks), separated by ``;``.
EPISODE_FIELDS = ["env_steps", "return", "length", "success", "achievements"]


def episode_row(row: dict) -> dict:
    """One training episode of an ``episodes.csv`` (or ``curves.csv``) row, typed (files from before the
    ``achievements`` column read as none)."""
    return {"env_steps": int(row["env_steps"]), "return": float(row["return"]), "length": int(row["length"]),
            "success": int(row["success"]), "achievements": row.get("achievements") or ""}


def read_episodes(path: Path) -> list[dict]:
    """The training episodes a run's ``episodes.csv`` holds (none if it has no file yet)."""
    if not path.exists():
        return []
    with open(path) as f:
        return [episode_row(r) for r in csv.DictReader(f)]


def pieces_fingerprint(pieces) -> str | None:
    """The fingerprint of a method's frozen pieces (None for methods from scratch)."""
    return getattr(pieces, "fingerprint", None)


def check_run_pieces(config: TrainConfig, pieces) -> None:
    """A clear error when the pieces of ``config``'s run directory are not those its trained run learned on (they
    were rebuilt since): its policy's actions would mean other goals or skills."""
    done = stage_done(run_directory(config))
    recorded = ((done or {}).get("inputs") or {}).get("pieces")
    current = pieces_fingerprint(pieces)
    if recorded and current and recorded != current:
        raise PTGMError(f"The run in {run_directory(config)} was trained on pre-trained pieces {recorded}, but those "
                        f"in {config.run_dir} are now {current} (rebuilt since). Retrain it with "
                        f"`{rerun_command('train', config)}`.")


def load_method_pieces(config: TrainConfig, check_dataset: bool = True):
    """The frozen pre-trained pieces ``config.method`` acts with (None for methods from scratch)."""
    return get_method(config.method).load_pieces(config, check_dataset=check_dataset)


def load_trained_model(config: TrainConfig, path: Path, pieces=None, env=None):
    """The saved learner of a ``config.method`` run, with the frozen pieces its class keeps outside the zip."""
    return get_method(config.method).load_model(config, path, pieces, env)


def saved_run_config(config: TrainConfig) -> TrainConfig:
    """The settings a run was trained with (its ``config.json``), located by ``config``'s run_dir/task/method/seed.

    Evaluating and reporting a run must use its own k, goal composition and low-level mode.
    """
    path = run_directory(config) / "config.json"
    if not path.exists():
        return config
    saved = json.loads(path.read_text())
    saved.setdefault("compose_goals", False)  # runs from before goal composition trained without it
    saved.update(run_dir=config.run_dir, seed=config.seed, resume=False, force=False, device=config.device)
    return settings_from_dict(TrainConfig, saved)


def evaluate_model(config: TrainConfig, model, pieces=None, episodes: int | None = None,
                   deterministic: bool = False, env: gym.Env | None = None) -> dict:
    """Success rate and returns of the trained policy on fresh episodes of the task.

    The policy samples its actions (the benchmark's evaluation) unless ``deterministic``, which takes its most
    likely action (for PTGM: the most likely goal; how the low-level policy acts is ``config``'s).
    """
    episodes = config.eval_episodes if episodes is None else episodes
    eval_config = dataclasses.replace(config, seed=config.seed + 10_000)
    seed_everything(eval_config.seed)  # the sampled goals and low-level actions too: a rerun gives the same numbers
    env = env if env is not None else get_method(config.method).make_env(eval_config, pieces)
    successes, lengths, returns, subtasks = [], [], [], Counter()
    for _ in progress(range(episodes), desc="evaluate", leave=False):
        obs, _ = env.reset()
        done, steps, ret = False, 0, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            steps += int(info.get("env_steps", 1))
            ret += reward
            done = terminated or truncated
        successes.append(bool(info.get("is_success", ret >= 1.0)))
        returns.append(ret)
        lengths.append(steps)
        # Multi-subtask domains (Kitchen) list the task's subtasks completed during the episode (the score).
        subtasks.update(info.get("episode_task_completions", ()))
    env.close()
    result = {"success_rate": float(np.mean(successes)) if successes else 0.0,
              "mean_env_steps": float(np.mean(lengths)) if lengths else 0.0,
              "mean_return": float(np.mean(returns)) if returns else 0.0,
              "best_return": float(np.max(returns)) if returns else 0.0, "episodes": episodes,
              "deterministic": deterministic}
    if subtasks:
        result["subtask_rates"] = {name: count / max(episodes, 1) for name, count in sorted(subtasks.items())}
    return result
