"""`ptgm train`: downstream RL on a task — PTGM (goals + prior), its ablations, SPiRL, or flat PPO / SAC."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from tqdm import tqdm

from ptgm.baselines.spirl import SkillEnv, SpirlSAC, load_skills
from ptgm.clustering.codebook import Codebook
from ptgm.domains import get_domain
from ptgm.hrl.ppo import PTGMPPO
from ptgm.hrl.sac import TARGET_DIVERGENCE, GoalSAC
from ptgm.hrl.wrapper import ContinuousGoalEnv, GoalSelectionEnv, GoalSelectionVecEnv, ScaledObservation
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.nets import observation_scale
from ptgm.prior.model import GoalPrior
from ptgm.utils import (
    PTGMError,
    atomic_write_json,
    config_dict,
    fill_domain_defaults,
    mark_stage_done,
    prepare_stage,
    seed_everything,
)

#: Hierarchical methods that pick one of the codebook's N cluster goals (the rest output continuous goals).
#: PTGM over the N cluster goals: PPO with the KL-to-prior reward, without the prior (α = 0), or
#: discrete SAC with the prior-divergence term (the authors' Kitchen learner, ptgm/hrl/sac.py).
CLUSTER_GOAL_METHODS = ("ptgm", "ptgm-no-prior", "ptgm-sac")
HIERARCHICAL_METHODS = CLUSTER_GOAL_METHODS + ("ptgm-no-cluster",)
#: Flat baselines from Stable-Baselines3 on the raw task environment (SAC needs continuous actions).
FLAT_METHODS = ("ppo", "sac", "bc-ppo")
#: Methods that learn from scratch: they use none of the pre-trained pieces (dataset, low-level policy, goals).
SCRATCH_METHODS = ("ppo", "sac")
#: SPiRL: SAC over the latents of skills pre-trained with `ptgm spirl` (continuous actions only).
METHODS = HIERARCHICAL_METHODS + FLAT_METHODS + ("spirl",)


@dataclass
class TrainConfig:
    """Hyper-parameters of `ptgm train` (downstream RL on one task)."""

    run_dir: str = field(default="", metadata={"help": "run directory; writes RUN_DIR/rl/TASK/METHOD-seedS (empty: runs/DOMAIN)"})
    domain: str = field(default="crafter", metadata={"help": "domain plug-in"})
    task: str = field(default="", metadata={"help": "downstream task name (empty: the domain's default)"})
    method: str = field(default="ptgm", metadata={
        "help": "ptgm | ptgm-no-prior (α=0) | ptgm-sac (SAC over the goals, KL(policy ‖ prior) regularised) | "
                "ptgm-no-cluster (continuous goals, no prior) | ppo | sac (flat, "
                "from scratch) | bc-ppo (flat, cloned from the play data, then PPO) | spirl (SAC over the skills of "
                "`ptgm spirl`, H env steps each; continuous actions)"})
    env_steps: int = field(default=100_000, metadata={"help": "budget of environment (low-level) steps"})
    k: int = field(default=10, metadata={"help": "environment steps per high-level step"})
    compose_goals: bool = field(default=True, metadata={
        "help": "give the low-level policy the domain's composed goal (Kitchen: objects a cluster goal leaves "
                "where they start keep their current state); false: the cluster goal state as it is"})
    deterministic_low_level: bool | None = field(default=None, metadata={
        "help": "run the low-level policy's most likely action instead of sampling it (unset: the domain's, "
                "Kitchen yes, Crafter no)"})
    kl_coef: float = field(default=0.01, metadata={"help": "α, weight of KL(prior ‖ policy) in the reward"})
    init_from_prior: bool = field(default=True, metadata={"help": "start the high-level policy equal to the prior"})
    n_envs: int = field(default=4, metadata={"help": "parallel environments"})
    subproc: bool = field(default=False, metadata={"help": "step environments in subprocesses"})
    learning_rate: float = field(default=3e-4, metadata={"help": "learning rate (PPO; actor, critics and α of SAC, ptgm-sac and spirl)"})
    anneal_lr: bool = field(default=False, metadata={
        "help": "decay the learning rate linearly to 0 over the env-step budget (CleanRL's PPO default); on "
                "Kitchen it did not stop the late drift of long runs (results/README.md)"})
    normalize_advantage: bool = field(default=True, metadata={
        "help": "PPO: standardise the advantages of each minibatch (SB3's default); false tests whether this "
                "lets the KL term alone steer PTGM on a plateau of equal task returns (results/README.md)"})
    n_steps: int = field(default=0, metadata={"help": "PPO rollout length per env (0: 64 high-level / 256 flat)"})
    batch_size: int = field(default=64, metadata={"help": "PPO minibatch size"})
    n_epochs: int = field(default=4, metadata={"help": "PPO epochs per rollout"})
    gamma: float = field(default=0.0, metadata={"help": "discount (0: the domain's high-level discount for ptgm and spirl "
                                                                 "— Crafter 0.95, Kitchen 0.99 — and 0.99 flat)"})
    ent_coef: float = field(default=0.01, metadata={"help": "PPO entropy bonus"})
    target_kl: float | None = field(default=None, metadata={
        "help": "PPO: end a rollout's epochs early once the approximate KL to the rollout's policy passes this "
                "(0: never; unset: the domain's for the PTGM methods, Kitchen 0.02, Crafter 0; 0 for flat PPO)"})
    target_divergence: float = field(default=TARGET_DIVERGENCE, metadata={
        "help": "ptgm-sac and spirl: the KL(policy ‖ prior) in nats that their auto-tuned α steers towards"})
    bc_steps: int = field(default=5000, metadata={"help": "bc-ppo: behaviour-cloning gradient steps before PPO"})
    sac_learning_starts: int = field(default=5000, metadata={"help": "SAC: environment steps of random actions before learning"})
    hidden: tuple[int, ...] = field(default=(), metadata={
        "help": "actor/critic hidden widths (empty: the prior's for ptgm, whose actor starts as a copy of it; "
                "256 256 for flat baselines)"})
    eval_episodes: int = field(default=50, metadata={"help": "episodes of the final evaluation"})
    checkpoint_every: int = field(default=25_000, metadata={"help": "environment steps between checkpoints"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    force: bool = field(default=False, metadata={"help": "retrain even if finished"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint"})

    def __post_init__(self) -> None:
        fill_domain_defaults(self)


def run_directory(config: TrainConfig) -> Path:
    return Path(config.run_dir) / "rl" / config.task / f"{config.method}-seed{config.seed}"


def load_pretrained(run_dir: str | Path) -> tuple[GoalConditionedPolicy, Codebook, GoalPrior, dict]:
    """The three pre-trained pieces, checked to come from one dataset."""
    run_dir = Path(run_dir)
    policy, policy_ckpt = GoalConditionedPolicy.load(run_dir / "lowlevel" / "policy.pt")
    codebook = Codebook.load(run_dir / "codebook" / "codebook.npz")
    prior, prior_ckpt = GoalPrior.load(run_dir / "prior" / "prior.pt")
    codebook.check_matches(policy_ckpt["fingerprint"], "the low-level policy")
    codebook.check_matches(prior_ckpt["fingerprint"], "the goal prior")
    if prior.n_goals != codebook.n_goals:
        raise PTGMError(f"The prior predicts {prior.n_goals} goals but the codebook has {codebook.n_goals}. "
                        "Retrain the prior with `ptgm prior --force`.")
    return policy, codebook, prior, policy_ckpt


def _goal_env_kwargs(config: TrainConfig) -> dict:
    """How every goal-selecting wrapper runs the low-level policy, from the training settings."""
    compose = get_domain(config.domain).compose_goal if config.compose_goals else None
    return dict(k=config.k, deterministic=config.deterministic_low_level, compose_goal=compose)


def make_env_fn(config: TrainConfig, rank: int, pieces=None, raw: bool = False):
    """A thunk building one wrapped environment: task env → Monitor → (goal selection) → scaled obs.

    ``raw=True`` stops after Monitor (for :class:`GoalSelectionVecEnv`, which adds the rest).
    """

    def thunk() -> gym.Env:
        torch.set_num_threads(1)
        domain = get_domain(config.domain)
        # Monitor copies the task's success flag into each finished episode's record.
        env = Monitor(domain.make_env(config.task), info_keywords=("is_success",))
        if raw:
            env.action_space.seed(config.seed * 1000 + rank)
            return env
        if config.method == "spirl":
            env = SkillEnv(env, pieces if pieces is not None else load_skills(config.run_dir, config.domain))
        elif config.method in HIERARCHICAL_METHODS:
            policy, codebook, _, _ = pieces if pieces is not None else load_pretrained(config.run_dir)
            if config.method not in CLUSTER_GOAL_METHODS:
                goals = codebook.goal_features
                env = ContinuousGoalEnv(env, policy, goals.min(0), goals.max(0), **_goal_env_kwargs(config))
            else:
                env = GoalSelectionEnv(env, policy, codebook.goal_features, **_goal_env_kwargs(config))
        env = ScaledObservation(env)
        env.reset(seed=config.seed * 1000 + rank)
        env.action_space.seed(config.seed * 1000 + rank)
        return env

    return thunk


def make_vec_env(config: TrainConfig, pieces=None) -> VecEnv:
    """The training environments: hierarchical ones share one batched low-level policy unless ``subproc``."""
    if config.method in CLUSTER_GOAL_METHODS and not config.subproc:
        policy, codebook, _, _ = pieces if pieces is not None else load_pretrained(config.run_dir)
        fns = [make_env_fn(config, rank, raw=True) for rank in range(config.n_envs)]
        vec_env = GoalSelectionVecEnv(fns, policy, codebook.goal_features, **_goal_env_kwargs(config))
        vec_env.seed(config.seed * 1000)
        return vec_env
    fns = [make_env_fn(config, rank, pieces if not config.subproc else None) for rank in range(config.n_envs)]
    return SubprocVecEnv(fns) if config.subproc else DummyVecEnv(fns)


class EpisodeRecorder(BaseCallback):
    """Counts environment steps, records finished episodes, checkpoints, and stops at the budget."""

    def __init__(self, out: Path, budget: int, checkpoint_every: int, env_steps: int = 0,
                 episodes: list[dict] | None = None):
        super().__init__()
        self.out = out
        self.budget = budget
        self.checkpoint_every = checkpoint_every
        self.env_steps = env_steps
        self.episodes = episodes or []
        self._next_checkpoint = (env_steps // checkpoint_every + 1) * checkpoint_every
        self.bar = tqdm(total=budget, initial=env_steps, desc=out.parent.name + "/" + out.name, unit="step")

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            steps = int(info.get("env_steps", 1))
            self.env_steps += steps
            self.bar.update(steps)
            if "episode" in info:
                ep = info["episode"]
                success = bool(ep.get("is_success", ep["r"] >= 1.0))
                self.episodes.append({"env_steps": self.env_steps, "return": float(ep["r"]),
                                      "length": int(ep["l"]), "success": int(success)})
                recent = self.episodes[-50:]
                rate = float(np.mean([e["success"] for e in recent]))
                mean_return = float(np.mean([e["return"] for e in recent]))
                self.logger.record("ptgm/success_rate_last50", rate)
                self.logger.record("ptgm/return_last50", mean_return)
                self.model.logger.record("ptgm/env_steps", self.env_steps)
                self.bar.set_postfix(success=f"{rate:.2f}", ret=f"{mean_return:.2f}", episodes=len(self.episodes))
        if self.env_steps >= self._next_checkpoint:
            self._next_checkpoint += self.checkpoint_every
            self.save_checkpoint()
        return self.env_steps < self.budget

    def _on_rollout_end(self) -> None:
        self.logger.record("ptgm/env_steps", self.env_steps)

    def write_episodes(self) -> None:
        tmp = self.out / "episodes.csv.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, ["env_steps", "return", "length", "success"])
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


def episode_row(row: dict) -> dict:
    """One training episode of an ``episodes.csv`` (or ``curves.csv``) row, typed."""
    return {"env_steps": int(row["env_steps"]), "return": float(row["return"]), "length": int(row["length"]),
            "success": int(row["success"])}


def read_episodes(path: Path) -> list[dict]:
    """The training episodes a run's ``episodes.csv`` holds (none if it has no file yet)."""
    if not path.exists():
        return []
    with open(path) as f:
        return [episode_row(r) for r in csv.DictReader(f)]


def train(config: TrainConfig) -> dict:
    if config.method not in METHODS:
        raise PTGMError(f"Unknown method {config.method!r}; choose one of {', '.join(METHODS)}.")
    domain = get_domain(config.domain)
    domain.check_task(config.task)
    out = run_directory(config)
    previous = prepare_stage(out, config, config.force, config.resume, f"train {config.task}/{config.method}")
    if previous is not None:
        return previous
    seed_everything(config.seed)
    pieces = load_method_pieces(config)
    vec_env = make_vec_env(config, pieces)
    episodes, env_steps = [], 0
    ckpt = out / "checkpoint.zip"
    if config.resume and ckpt.exists():
        model = load_trained_model(config, ckpt, pieces, env=vec_env)
        if isinstance(model, OffPolicyAlgorithm) and (out / "replay_buffer.pkl").exists():
            model.load_replay_buffer(out / "replay_buffer.pkl")
        env_steps = json.loads((out / "checkpoint.json").read_text())["env_steps"]
        episodes = [e for e in read_episodes(out / "episodes.csv") if e["env_steps"] <= env_steps]
        print(f"[train] resuming {out} at {env_steps} environment steps")
    else:
        model = make_model(config, vec_env, pieces, tensorboard_log=str(out / "tb"))
    recorder = EpisodeRecorder(out, config.env_steps, config.checkpoint_every, env_steps, episodes)
    start = time.perf_counter()
    callbacks = (CallbackList([recorder, LinearLearningRateDecay(config.learning_rate, recorder)]) if config.anneal_lr
                 else recorder)
    model.learn(total_timesteps=10 * config.env_steps, callback=callbacks, reset_num_timesteps=not config.resume,
                tb_log_name=config.method)
    wall = time.perf_counter() - start
    recorder.bar.close()
    recorder.write_episodes()
    model.save(out / "model.zip")
    vec_env.close()
    evaluation = evaluate_model(config, model, pieces)
    recent = recorder.episodes[-50:]
    summary = {
        "task": config.task, "method": config.method, "seed": config.seed,
        "env_steps": recorder.env_steps, "episodes": len(recorder.episodes),
        "train_success_last50": float(np.mean([e["success"] for e in recent])) if recent else 0.0,
        "eval_success_rate": evaluation["success_rate"], "eval_mean_return": evaluation["mean_return"],
        "eval_mean_env_steps": evaluation["mean_env_steps"],
        "eval_subtask_rates": evaluation.get("subtask_rates", {}),
        "eval_episodes": evaluation["episodes"], "wall_seconds": wall,
        "env_steps_per_second": (recorder.env_steps - env_steps) / max(wall, 1e-9),
    }
    for path in (ckpt, out / "checkpoint.json", out / "replay_buffer.pkl"):
        path.unlink(missing_ok=True)
    mark_stage_done(out, config, summary)
    print(f"[train] {config.task}/{config.method} seed {config.seed}: eval success {summary['eval_success_rate']:.2f} "
          f"after {summary['env_steps']} env steps ({summary['env_steps_per_second']:.0f} env steps/s)")
    return summary


def load_method_pieces(config: TrainConfig, check_dataset: bool = True):
    """The frozen pre-trained pieces ``config.method`` acts with: (low-level policy, codebook, prior, summary)
    for the hierarchical methods, the SPiRL skill model for spirl (with ``check_dataset``, checked against the
    dataset it was trained on, which reads that dataset again), else None."""
    if config.method == "spirl":
        return load_skills(config.run_dir, config.domain, check_dataset=check_dataset)
    return load_pretrained(config.run_dir) if config.method in HIERARCHICAL_METHODS else None


def make_model(config: TrainConfig, vec_env: VecEnv, pieces=None, tensorboard_log: str | None = None):
    """A fresh, untrained ``config.method`` learner on ``vec_env`` (built by :func:`make_vec_env` with ``pieces``).

    Before any RL step its policy is what pre-training alone gives: PTGM's actor is a copy of the goal prior,
    SPiRL's of the skill prior, bc-ppo's the behaviour-cloned policy; the other methods start at random.
    """
    domain = get_domain(config.domain)
    if config.method == "sac" and not isinstance(vec_env.action_space, gym.spaces.Box):
        raise PTGMError(f"SAC needs continuous actions; the {domain.name} task has {vec_env.action_space}. "
                        "Use --method ppo for the flat baseline.")
    hierarchical = config.method in HIERARCHICAL_METHODS
    n_steps = config.n_steps or (64 if hierarchical else 256)
    gamma = config.gamma or (domain.high_level_gamma if hierarchical or config.method == "spirl" else 0.99)
    common = dict(learning_rate=config.learning_rate, gamma=gamma, seed=config.seed, verbose=0, device="cpu",
                  tensorboard_log=tensorboard_log)
    hidden = list(config.hidden or (pieces[2].init_kwargs["hidden"] if config.method in CLUSTER_GOAL_METHODS
                                    else pieces.prior_hidden if config.method == "spirl" else (256, 256)))
    net = dict(net_arch=dict(pi=hidden, vf=hidden), activation_fn=torch.nn.ReLU)
    ppo_kwargs = dict(
        common, n_steps=n_steps,
        # SB3 warns when a minibatch is larger than the rollout; tiny runs (tests) hit that.
        batch_size=min(config.batch_size, n_steps * config.n_envs), n_epochs=config.n_epochs,
        ent_coef=config.ent_coef, target_kl=config.target_kl or None, policy_kwargs=net,
        normalize_advantage=config.normalize_advantage,
    )
    sac_kwargs = dict(common, batch_size=256, learning_starts=config.sac_learning_starts,
                      policy_kwargs=dict(net_arch=dict(pi=hidden, qf=hidden)))
    if config.method == "ptgm-sac":  # counts, learning starts and the buffer are in high-level steps
        return GoalSAC("MlpPolicy", vec_env, prior=pieces[2], target_divergence=config.target_divergence,
                       init_from_prior=config.init_from_prior, batch_size=256,
                       learning_starts=config.sac_learning_starts // config.k,
                       buffer_size=config.env_steps // config.k + config.n_envs, policy_kwargs=dict(net_arch=hidden),
                       **common)
    if hierarchical:
        use_prior = config.method == "ptgm"
        return PTGMPPO("MlpPolicy", vec_env, prior=pieces[2] if use_prior else None,
                       kl_coef=config.kl_coef if use_prior else 0.0,
                       init_from_prior=use_prior and config.init_from_prior, **ppo_kwargs)
    if config.method == "sac":
        return SAC("MlpPolicy", vec_env, **sac_kwargs)
    if config.method == "spirl":  # learning starts and the buffer count skill steps, one update per skill step
        skill_steps = config.env_steps // pieces.horizon
        return SpirlSAC("MlpPolicy", vec_env, skills=pieces, init_from_prior=config.init_from_prior,
                        target_divergence=config.target_divergence,
                        **dict(sac_kwargs, learning_starts=config.sac_learning_starts // pieces.horizon,
                               buffer_size=skill_steps + config.n_envs, gradient_steps=-1))
    model = PPO("MlpPolicy", vec_env, **ppo_kwargs)
    if config.method == "bc-ppo":
        clone_from_play_data(model, config, domain)
    return model


def load_trained_model(config: TrainConfig, path: Path, pieces=None, env: VecEnv | None = None):
    """The saved policy of a ``config.method`` run, with the frozen pieces its class keeps outside the zip."""
    if config.method == "spirl":
        return SpirlSAC.load(path, env=env, device="cpu", skills=pieces)
    if config.method == "ptgm-sac":
        return GoalSAC.load(path, env=env, device="cpu", prior=pieces[2])
    return {"sac": SAC, "ppo": PPO, "bc-ppo": PPO}.get(config.method, PTGMPPO).load(path, env=env, device="cpu")


def saved_run_config(config: TrainConfig) -> TrainConfig:
    """The settings a run was trained with (its ``config.json``), located by ``config``'s run_dir/task/method/seed.

    Evaluating and reporting a run must use its own k, goal composition and low-level mode.
    """
    path = run_directory(config) / "config.json"
    if not path.exists():
        return config
    saved = json.loads(path.read_text())
    settings = {f.name: saved[f.name] for f in dataclasses.fields(TrainConfig) if f.name in saved}
    settings.setdefault("compose_goals", False)  # runs from before goal composition trained without it
    settings.update(run_dir=config.run_dir, seed=config.seed, resume=False, force=False,
                    hidden=tuple(settings.get("hidden", ())))
    return TrainConfig(**settings)


def clone_from_play_data(model: PPO, config: TrainConfig, domain) -> dict:
    """Start PPO's actor as a behaviour-cloned policy of the run's play dataset (scaled as the policy sees it)."""
    from ptgm.baselines.bc import behaviour_clone
    from ptgm.data.generate import load_run_dataset

    data = load_run_dataset(config.run_dir, observation_key=domain.dataset_observation_key)
    if data.observations.shape[1:] != model.observation_space.shape:
        raise PTGMError(f"The play dataset's observations have shape {data.observations.shape[1:]} but the "
                        f"{config.task} environment's have {model.observation_space.shape}; it was recorded for "
                        "another environment.")
    rows = data.action_rows()
    # The policy sees ScaledObservation's view of the task env: raw observations over the space's bound.
    scale = observation_scale(domain.make_env(config.task).observation_space)
    result = behaviour_clone(model.policy, data.observations[rows].astype(np.float32) / scale, data.actions[rows],
                             config.bc_steps, seed=config.seed)
    print(f"[train] behaviour cloning on {len(rows)} play transitions: loss {result['bc_loss']:.3f}, "
          f"accuracy {result['bc_accuracy']:.3f}")
    return result


def evaluate_model(config: TrainConfig, model: PPO, pieces=None, episodes: int | None = None,
                   deterministic: bool = False) -> dict:
    """Success rate and returns of the trained policy on fresh episodes of the task.

    The policy samples its actions (the benchmark's evaluation) unless ``deterministic``, which takes its most
    likely action (for PTGM: the most likely goal; how the low-level policy acts is ``config``'s).
    """
    episodes = config.eval_episodes if episodes is None else episodes
    eval_config = TrainConfig(**{**config_dict(config), "hidden": tuple(config.hidden), "seed": config.seed + 10_000})
    seed_everything(eval_config.seed)  # the sampled goals and low-level actions too: a rerun gives the same numbers
    env = make_env_fn(eval_config, 0, pieces)()
    successes, lengths, returns, subtasks = [], [], [], Counter()
    for _ in tqdm(range(episodes), desc="evaluate", leave=False):
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
