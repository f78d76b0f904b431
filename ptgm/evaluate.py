"""`ptgm evaluate`: success rate of a trained downstream policy on fresh episodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from stable_baselines3 import PPO, SAC

from ptgm.baselines.spirl import SpirlSAC, load_skills
from ptgm.hrl.ppo import PTGMPPO
from ptgm.hrl.train import HIERARCHICAL_METHODS, TrainConfig, evaluate_model, load_pretrained, run_directory
from ptgm.utils import PTGMError, fill_domain_defaults


@dataclass
class EvaluateConfig:
    """Settings of `ptgm evaluate`."""

    run_dir: str = field(default="", metadata={"help": "run directory (empty: runs/DOMAIN)"})
    domain: str = field(default="crafter", metadata={"help": "domain plug-in"})
    task: str = field(default="", metadata={"help": "task the policy was trained on (empty: the domain's default)"})
    method: str = field(default="ptgm", metadata={"help": "ptgm | ptgm-no-prior | ppo | sac | spirl"})
    seed: int = field(default=0, metadata={"help": "training seed of the run to evaluate"})
    k: int = field(default=10, metadata={"help": "environment steps per high-level step"})
    episodes: int = field(default=100, metadata={"help": "evaluation episodes"})

    def __post_init__(self) -> None:
        fill_domain_defaults(self)


def evaluate(config: EvaluateConfig) -> dict:
    train_config = TrainConfig(run_dir=config.run_dir, domain=config.domain, task=config.task, method=config.method,
                               seed=config.seed, k=config.k)
    path = run_directory(train_config) / "model.zip"
    if not path.exists():
        raise PTGMError(f"No trained policy at {path}. Train it with `ptgm train --task {config.task} "
                        f"--method {config.method} --seed {config.seed} --run-dir {config.run_dir}`.")
    hierarchical = config.method in HIERARCHICAL_METHODS
    if config.method == "spirl":  # the skill model travels beside the policy, not inside it
        pieces = load_skills(config.run_dir, config.domain)
        model = SpirlSAC.load(path, device="cpu", skills=pieces)
    else:
        model = {"ppo": PPO, "sac": SAC}.get(config.method, PTGMPPO).load(path, device="cpu")
        pieces = load_pretrained(config.run_dir) if hierarchical else None
    result = evaluate_model(train_config, model, pieces, episodes=config.episodes)
    print(f"{config.task}/{config.method} seed {config.seed}: success rate {result['success_rate']:.2f} over "
          f"{result['episodes']} episodes, mean return {result['mean_return']:.2f}, "
          f"{result['mean_env_steps']:.0f} env steps per episode")
    return result
