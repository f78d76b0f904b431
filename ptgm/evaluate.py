"""`ptgm evaluate`: success rate of a trained downstream policy on fresh episodes."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ptgm.bench import mean_std
from ptgm.settings import EvaluateConfig
from ptgm.train import (
    TrainConfig,
    check_run_pieces,
    evaluate_model,
    load_method_pieces,
    load_trained_model,
    run_directory,
    saved_run_config,
)
from ptgm.utils import (
    PTGMError,
    atomic_write_bytes,
    atomic_write_json,
    config_dict,
    invoked_command,
)

logger = logging.getLogger(__name__)

def trained_config(config: EvaluateConfig) -> TrainConfig:
    """The run's own training settings (k, goal composition, low-level mode), with this command's overrides."""
    train_config = saved_run_config(TrainConfig(run_dir=config.run_dir, domain=config.domain, dataset=config.dataset,
                                                goal_keys=config.goal_keys, task=config.task,
                                                start_inventory=config.start_inventory, device=config.device,
                                                method=config.method, seed=config.seed))
    if config.k:
        train_config.k = config.k
    if config.low_level:
        train_config.deterministic_low_level = config.low_level == "deterministic"
    return train_config


def evaluate(config: EvaluateConfig) -> dict:
    """Evaluate one trained run (``seed``), or several (``seeds``) with their mean ± std; write ``out`` if set."""
    if not config.seeds:
        result = evaluate_run(config)
        runs = [result]
    else:
        runs = [evaluate_run(dataclasses.replace(config, seed=seed, seeds=())) for seed in config.seeds]
        result = {"runs": runs}
        for key in ("success_rate", "mean_return"):
            values = [r[key] for r in runs]
            result[f"{key}_mean"], result[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
        logger.info(f"{len(runs)} seeds: success rate {result['success_rate_mean']:.2f} ± {result['success_rate_std']:.2f}, "
              f"mean return {result['mean_return_mean']:.2f} ± {result['mean_return_std']:.2f}")
    if config.out:
        write_evaluation(config, runs, Path(config.out))
    return result


def write_evaluation(config: EvaluateConfig, runs: list[dict], out: Path) -> None:
    """A table of the evaluated runs (one row per seed, then mean ± std) and the same as JSON."""
    subtasks = sorted({name for r in runs for name in r.get("subtask_rates", {})})
    lines = [f"# {config.domain} {config.task}: {config.method}, {'most likely' if config.deterministic else 'sampled'}"
             " actions", "", f"Command: `{invoked_command('evaluate')}`", "",
             f"{runs[0]['episodes']} episodes per seed; the low-level policy acts "
             f"{'as each run was trained' if not config.low_level else config.low_level + 'ally'}. Success: the "
             "episode did the whole task (Kitchen: every subtask); return: the task's score (Kitchen: subtasks "
             "completed).", "",
             "| seed | success rate | mean return | best return | env steps per episode |"
             + "".join(f" {name} |" for name in subtasks),
             "|---|---|---|---|---|" + "---|" * len(subtasks)]
    for r in runs:
        lines.append(f"| {r['seed']} | {r['success_rate']:.2f} | {r['mean_return']:.2f} | {r['best_return']:.2f} | "
                     f"{r['mean_env_steps']:.0f} |" + "".join(f" {r.get('subtask_rates', {}).get(n, 0.0):.2f} |"
                                                            for n in subtasks))
    if len(runs) > 1:
        lines.append(f"| mean ± std | {mean_std([r['success_rate'] for r in runs])} | "
                     f"{mean_std([r['mean_return'] for r in runs])} | | |" + "".join(
                         f" {mean_std([r.get('subtask_rates', {}).get(n, 0.0) for r in runs])} |" for n in subtasks))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    atomic_write_json(out.with_suffix(".json"), {"config": config_dict(config), "runs": runs})
    logger.info(f"[evaluate] wrote {out} and {out.with_suffix('.json')}")


def evaluate_run(config: EvaluateConfig) -> dict:
    """Evaluate the run of ``config.seed``."""
    train_config = trained_config(config)
    path = run_directory(train_config) / "model.zip"
    if not path.exists():
        raise PTGMError(f"No trained policy at {path}. Train it with `ptgm train --task {config.task} "
                        f"--method {config.method} --seed {config.seed} --run-dir {config.run_dir}`.")
    pieces = load_method_pieces(train_config, check_dataset=False)  # frozen pieces travel beside the policy
    check_run_pieces(train_config, pieces)
    model = load_trained_model(train_config, path, pieces)
    result = evaluate_model(train_config, model, pieces, episodes=config.episodes, deterministic=config.deterministic)
    logger.info(f"{config.task}/{config.method} seed {config.seed} ({'most likely' if config.deterministic else 'sampled'} "
          f"actions): success rate {result['success_rate']:.2f} over {result['episodes']} episodes, mean return "
          f"{result['mean_return']:.2f} (best {result['best_return']:.2f}), {result['mean_env_steps']:.0f} env steps "
          "per episode")
    if "subtask_rates" in result:
        logger.info("fraction of episodes completing each subtask: " +
              ", ".join(f"{name} {rate:.2f}" for name, rate in result["subtask_rates"].items()))
    if config.video:
        record_agent_video(config, train_config, model, pieces)
    return {"seed": config.seed, **result}


def record_agent_video(config: EvaluateConfig, train_config: TrainConfig, model, pieces) -> dict:
    """Record ``config.video_episodes`` episodes of the trained agent to ``config.video``, the goal in force and
    the step written on each frame."""
    import gymnasium as gym

    from ptgm.agent import Agent
    from ptgm.domains import domain_of
    from ptgm.video import record_video

    agent = Agent(train_config.method, train_config, pieces, model=model)

    class ResetsAgent(gym.Wrapper):
        """Starts the agent afresh (no goal in force) at each episode of the recording."""

        def reset(self, **kwargs):
            agent.reset()
            return self.env.reset(**kwargs)

    env = ResetsAgent(domain_of(train_config).make_env(train_config.task, render_mode="rgb_array"))
    result = record_video(env, lambda obs: agent.predict(obs, deterministic=config.deterministic), config.video,
                          episodes=config.video_episodes, max_steps=config.video_max_steps, caption=lambda info: info.get("caption", ""),
                          seed=train_config.seed + 30_000)
    logger.info(f"[evaluate] recorded {result['episodes']} episode(s), {result['frames']} frames, to {result['path']}")
    return result
