"""`ptgm evaluate`: success rate of a trained downstream policy on fresh episodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ptgm.baselines.spirl import load_skills
from ptgm.hrl.train import (
    HIERARCHICAL_METHODS,
    TrainConfig,
    evaluate_model,
    load_pretrained,
    load_trained_model,
    run_directory,
    saved_run_config,
)
from ptgm.utils import PTGMError, fill_domain_defaults


@dataclass
class EvaluateConfig:
    """Settings of `ptgm evaluate`."""

    run_dir: str = field(default="", metadata={"help": "run directory (empty: runs/DOMAIN)"})
    domain: str = field(default="crafter", metadata={"help": "domain plug-in"})
    task: str = field(default="", metadata={"help": "task the policy was trained on (empty: the domain's default)"})
    method: str = field(default="ptgm", metadata={"help": "a method of `ptgm train` (ptgm, ptgm-sac, ppo, sac, spirl, ...)"})
    seed: int = field(default=0, metadata={"help": "training seed of the run to evaluate"})
    k: int = field(default=0, metadata={"help": "environment steps per high-level step (0: as the run was trained)"})
    low_level: str = field(default="", metadata={
        "help": "how the low-level policy acts: deterministic (its mean or most likely action) | stochastic "
                "(sampled) | empty: as the run was trained"})
    episodes: int = field(default=100, metadata={"help": "evaluation episodes"})
    deterministic: bool = field(default=False, metadata={
        "help": "act by the trained policy's most likely action (PTGM: its most likely goal) instead of sampling, "
                "as the benchmark's evaluation does"})

    def __post_init__(self) -> None:
        fill_domain_defaults(self)


LOW_LEVEL_MODES = ("", "deterministic", "stochastic")


def trained_config(config: EvaluateConfig) -> TrainConfig:
    """The run's own training settings (k, goal composition, low-level mode), with this command's overrides."""
    train_config = saved_run_config(TrainConfig(run_dir=config.run_dir, domain=config.domain, task=config.task,
                                                method=config.method, seed=config.seed))
    if config.k:
        train_config.k = config.k
    if config.low_level:
        train_config.deterministic_low_level = config.low_level == "deterministic"
    return train_config


def evaluate(config: EvaluateConfig) -> dict:
    if config.low_level not in LOW_LEVEL_MODES:
        raise PTGMError(f"Unknown --low-level {config.low_level!r}; choose deterministic or stochastic (or leave it "
                        "empty for the run's own setting).")
    train_config = trained_config(config)
    path = run_directory(train_config) / "model.zip"
    if not path.exists():
        raise PTGMError(f"No trained policy at {path}. Train it with `ptgm train --task {config.task} "
                        f"--method {config.method} --seed {config.seed} --run-dir {config.run_dir}`.")
    if config.method == "spirl":  # the skill model travels beside the policy, not inside it
        pieces = load_skills(config.run_dir, config.domain)
    else:
        pieces = load_pretrained(config.run_dir) if config.method in HIERARCHICAL_METHODS else None
    model = load_trained_model(train_config, path, pieces)
    result = evaluate_model(train_config, model, pieces, episodes=config.episodes, deterministic=config.deterministic)
    print(f"{config.task}/{config.method} seed {config.seed} ({'most likely' if config.deterministic else 'sampled'} "
          f"actions): success rate {result['success_rate']:.2f} over {result['episodes']} episodes, mean return "
          f"{result['mean_return']:.2f} (best {result['best_return']:.2f}), {result['mean_env_steps']:.0f} env steps "
          "per episode")
    if "subtask_rates" in result:
        print("fraction of episodes completing each subtask: " +
              ", ".join(f"{name} {rate:.2f}" for name, rate in result["subtask_rates"].items()))
    return result
