"""Throughput benchmarks: environment, data generation, pre-training, hierarchical vs flat RL.

Usage (after `ptgm demo`, whose run directory provides the pre-trained pieces):

    python benchmarks/throughput.py                                   # Crafter, runs/demo
    python benchmarks/throughput.py --domain kitchen --run-dir runs/demo-kitchen

Writes results/DOMAIN/benchmarks.json and benchmarks.md (with the command in it).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from ptgm.data.generate import GenerateConfig, generate, load_run_dataset
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.domains import get_domain
from ptgm.hrl.pretrained import Pretrained
from ptgm.hrl.sharded import ShardedVecEnv
from ptgm.hrl.wrapper import GoalSelectionEnv, GoalSelectionVecEnv
from ptgm.train import TrainConfig, train
from ptgm.utils import available_cores

PARTS = ("env", "gen", "pretrain", "rl")
DOMAIN, TASK = None, ""  # set by main(): the domain and task every environment measurement uses


class EnvClock(gym.Wrapper):
    """Times the resets and steps of the task environment inside it.

    Resets cost the same with or without the low-level policy, but a good low-level policy
    ends task episodes sooner (resets more often) than random actions; and an agent that
    walks around costs the simulator more per step than one jittering in place. So besides
    plain throughput, the time spent in ``env.step`` itself is recorded: the environment's own
    speed on exactly the trajectories the loop produced.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.reset_seconds, self.step_seconds, self.resets = 0.0, 0.0, 0

    def reset(self, **kwargs):
        start = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.reset_seconds += time.perf_counter() - start
        self.resets += 1
        return out

    def step(self, action):
        start = time.perf_counter()
        out = self.env.step(action)
        self.step_seconds += time.perf_counter() - start
        return out


def _rates(steps: int, seconds: float, clocks: list[EnvClock]) -> dict:
    reset_seconds = sum(c.reset_seconds for c in clocks)
    return {"steps_per_s": steps / seconds, "steps_per_s_without_resets": steps / (seconds - reset_seconds),
            "env_alone_steps_per_s": steps / sum(c.step_seconds for c in clocks),
            "episodes": sum(c.resets for c in clocks), "steps": steps}


def env_steps_per_second(make_env, steps: int, seed: int = 0) -> dict:
    """Environment steps per second with uniformly random (high- or low-level) actions.

    ``make_env(clock)`` builds the environment around ``clock`` (a :class:`EnvClock`-wrapped task env).
    """
    clock = EnvClock(DOMAIN.make_env(TASK))
    env = make_env(clock)
    env.action_space.seed(seed)
    start = time.perf_counter()
    env.reset(seed=seed)
    done_steps = 0
    while done_steps < steps:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        done_steps += int(info.get("env_steps", 1))
        if terminated or truncated:
            env.reset()
    return _rates(done_steps, time.perf_counter() - start, [clock])


def vec_env_steps_per_second(make_vec_env, n_envs: int, steps: int, seed: int = 0) -> dict:
    """The same for a VecEnv built by ``make_vec_env(env_fns)`` (SB3 auto-resets finished environments)."""
    clocks = [EnvClock(DOMAIN.make_env(TASK)) for _ in range(n_envs)]
    start = time.perf_counter()
    vec_env = make_vec_env([lambda c=c: c for c in clocks])
    vec_env.seed(seed)
    vec_env.action_space.seed(seed)
    vec_env.reset()
    done_steps = 0
    while done_steps < steps:
        actions = np.stack([vec_env.action_space.sample() for _ in range(vec_env.num_envs)])
        *_, infos = vec_env.step(actions)
        done_steps += sum(int(info.get("env_steps", 1)) for info in infos)
    return _rates(done_steps, time.perf_counter() - start, clocks)


class _SubprocTaskEnv:
    """A picklable thunk for one subprocess: the task environment."""

    def __init__(self, domain: str, task: str):
        self.domain, self.task = domain, task

    def __call__(self) -> gym.Env:
        torch.set_num_threads(1)
        return get_domain(self.domain).make_env(self.task)


class _GoalSelectionShard:
    """A picklable ``(first, count) -> GoalSelectionVecEnv`` for one worker of a ShardedVecEnv, as `ptgm train
    --subproc` runs PTGM: the worker loads the pieces and batches the low-level policy over its share."""

    def __init__(self, domain: str, task: str, run_dir: str):
        self.domain, self.task, self.run_dir = domain, task, run_dir

    def __call__(self, first: int, count: int) -> GoalSelectionVecEnv:
        torch.set_num_threads(1)
        pieces = Pretrained.load(self.run_dir)
        fns = [lambda: get_domain(self.domain).make_env(self.task) for _ in range(count)]
        return GoalSelectionVecEnv(fns, pieces.policy, pieces.codebook.goal_features, k=10)


def subproc_steps_per_second(n_envs: int, steps: int, run_dir: str = "", seed: int = 0) -> dict:
    """Env steps per second of ``n_envs`` environments in other processes (random actions): raw, each in its own
    process (SB3's SubprocVecEnv); with ``run_dir``, goal selection as `ptgm train --subproc` runs it (one worker
    per available core, each batching the low-level policy over its share)."""
    if run_dir:
        vec_env = ShardedVecEnv(_GoalSelectionShard(DOMAIN.name, TASK, run_dir), n_envs, available_cores())
    else:
        vec_env = SubprocVecEnv([_SubprocTaskEnv(DOMAIN.name, TASK) for _ in range(n_envs)])
    try:
        vec_env.seed(seed)
        vec_env.action_space.seed(seed)
        vec_env.reset()
        start, done_steps = time.perf_counter(), 0
        while done_steps < steps:
            *_, infos = vec_env.step(np.stack([vec_env.action_space.sample() for _ in range(n_envs)]))
            done_steps += sum(int(info.get("env_steps", 1)) for info in infos)
        return {"steps_per_s": done_steps / (time.perf_counter() - start), "steps": done_steps}
    finally:
        vec_env.close()


def pretrain_samples_per_second(domain, run_dir: str, batch: int = 512, iters: int = 60) -> float:
    """Gradient-step throughput of the low-level policy on the run's dataset (samples/s)."""
    from ptgm.lowlevel.policy import GoalConditionedPolicy

    data = load_run_dataset(run_dir, observation_key=domain.dataset_observation_key)
    goals = torch.from_numpy(domain.goal_features(data.observations))
    obs, act = torch.from_numpy(data.observations), torch.from_numpy(data.actions)
    policy = GoalConditionedPolicy.for_env(domain.make_env(None), goals.shape[1])
    opt = torch.optim.Adam(policy.parameters(), 3e-4)
    rng = np.random.default_rng(0)
    rows_all = data.action_rows()
    start = None
    for i in range(iters + 5):
        if i == 5:
            start = time.perf_counter()
        rows = rng.choice(rows_all, batch)
        g = hindsight_goal_rows(rows, data.episode_end, rng, 1, 20)
        loss = -policy.log_prob(obs[rows], goals[g], act[rows]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return iters * batch / (time.perf_counter() - start)


def main() -> None:
    global DOMAIN, TASK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="crafter")
    parser.add_argument("--run-dir", default="", help="run with pre-trained pieces (default: the demo's)")
    parser.add_argument("--task", default="", help="task (default: the domain's)")
    parser.add_argument("--n-envs", type=int, default=4, help="environments of the batched measurements")
    parser.add_argument("--env-steps", type=int, default=20_000, help="steps per environment measurement")
    parser.add_argument("--gen-transitions", type=int, default=40_000)
    parser.add_argument("--rl-steps", type=int, default=20_000, help="env steps per RL training measurement")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="measurements to run")
    parser.add_argument("--out", default="", help="output folder (default: results/DOMAIN)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    domain = get_domain(args.domain)
    args.run_dir = args.run_dir or ("runs/demo" if args.domain == "crafter" else f"runs/demo-{args.domain}")
    args.task = args.task or domain.default_task
    args.out = args.out or f"results/{args.domain}"
    DOMAIN, TASK = domain, args.task
    flat = domain.flat_baseline
    command = ("python benchmarks/throughput.py " + " ".join(sys.argv[1:])).strip()
    results: dict = {"command": command, "task": args.task, "machine": f"{platform.machine()}, "
                     f"{torch.get_num_threads()} torch thread(s), {__import__('os').cpu_count()} cores"}
    env_rows, other_rows = [], []

    if "env" in args.parts:
        pieces = Pretrained.load(args.run_dir)
        policy, codebook = pieces.policy, pieces.codebook
        goals = codebook.goal_features
        print("raw environment ...")
        raw = env_steps_per_second(lambda env: env, args.env_steps)
        print("goal-selection environment (low-level policy in the loop) ...")
        hier = env_steps_per_second(lambda env: GoalSelectionEnv(env, policy, goals, k=10), args.env_steps)
        print(f"{args.n_envs} environments, raw and batched goal selection ...")
        raw_vec = vec_env_steps_per_second(DummyVecEnv, args.n_envs, args.env_steps)
        hier_vec = vec_env_steps_per_second(lambda fns: GoalSelectionVecEnv(fns, policy, goals, k=10),
                                            args.n_envs, args.env_steps)
        print(f"{args.n_envs} environments, each in a subprocess, raw and goal selection ...")
        raw_sub = subproc_steps_per_second(args.n_envs, args.env_steps)
        hier_sub = subproc_steps_per_second(args.n_envs, args.env_steps, args.run_dir)
        results.update(raw_env=raw, hierarchical_env=hier, raw_vec_env=raw_vec, hierarchical_vec_env=hier_vec,
                       raw_subproc_env=raw_sub, hierarchical_subproc_env=hier_sub)
        for name, r in [("raw env, random actions", raw),
                        ("goal-selection env (random goals, low-level policy every step, k=10)", hier),
                        (f"raw env, {args.n_envs} in a DummyVecEnv", raw_vec),
                        (f"goal selection, {args.n_envs} envs, batched low-level policy (GoalSelectionVecEnv, "
                         "as in training)", hier_vec)]:
            env_rows.append(f"| {name} | {r['steps_per_s']:.0f} | {r['steps_per_s_without_resets']:.0f} | "
                            f"{r['env_alone_steps_per_s']:.0f} | {r['steps'] / max(r['episodes'], 1):.0f} |")
        for name, a, b in [("**hierarchical / raw, one environment**", hier, raw),
                           (f"**hierarchical / raw, {args.n_envs} environments**", hier_vec, raw_vec)]:
            env_rows.append(f"| {name} | {a['steps_per_s'] / b['steps_per_s']:.2f} | "
                            f"{a['steps_per_s_without_resets'] / b['steps_per_s_without_resets']:.2f} | "
                            f"{a['steps_per_s_without_resets'] / a['env_alone_steps_per_s']:.2f} (vs the env alone "
                            "on the same trajectories) | |")
        env_rows += [f"| raw env, {args.n_envs} in a SubprocVecEnv | {raw_sub['steps_per_s']:.0f} | | | |",
                     f"| goal selection, {args.n_envs} envs in {min(available_cores(), args.n_envs)} worker "
                     "processes, each batching the low-level policy over its share (`ptgm train --subproc`) | "
                     f"{hier_sub['steps_per_s']:.0f} | | | |",
                     f"| **hierarchical in workers / raw, {args.n_envs} environments in subprocesses** | "
                     f"{hier_sub['steps_per_s'] / raw_sub['steps_per_s']:.2f} | | | |",
                     f"| **hierarchical in workers / raw, {args.n_envs} environments in one process** | "
                     f"{hier_sub['steps_per_s'] / raw_vec['steps_per_s']:.2f} | | | |"]

    if "gen" in args.parts:
        print("data generation (2 workers) ...")
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            gen = generate(GenerateConfig(run_dir=tmp, domain=args.domain, transitions=args.gen_transitions,
                                          shard_transitions=args.gen_transitions // 2, workers=2))
            results["generation_transitions_per_s_incl_writing"] = gen["transitions"] / (time.perf_counter() - start)
            results["generation_transitions_per_s_playing"] = gen["transitions_per_second"]
        other_rows += [
            f"| data generation, 2 workers, playing only | {results['generation_transitions_per_s_playing']:.0f} "
            "transitions/s |",
            f"| data generation, 2 workers, incl. start-up and Minari writing | "
            f"{results['generation_transitions_per_s_incl_writing']:.0f} transitions/s |"]

    if "pretrain" in args.parts:
        print("low-level pre-training ...")
        results["pretrain_samples_per_s"] = pretrain_samples_per_second(domain, args.run_dir)
        other_rows.append(f"| low-level pre-training (batch 512, 1 thread) | {results['pretrain_samples_per_s']:.0f} "
                          "samples/s |")

    if "rl" in args.parts:
        print(f"RL training, PTGM vs flat {flat} ...")
        with tempfile.TemporaryDirectory() as tmp:
            for stage in ["data", "lowlevel", "codebook", "prior"]:
                shutil.copytree(Path(args.run_dir) / stage, Path(tmp) / stage)
            for subproc in (False, True):
                for method in ["ptgm", flat]:
                    summary = train(TrainConfig(run_dir=tmp, domain=args.domain, task=args.task, method=method,
                                                env_steps=args.rl_steps, eval_episodes=1, checkpoint_every=10**9,
                                                subproc=subproc, force=True))
                    results[f"train_{method}{'_subproc' if subproc else ''}_env_steps_per_s"] = \
                        summary["env_steps_per_second"]
        other_rows += [
            f"| PTGM training (PPO over goals, 4 envs, {args.rl_steps} env steps) | "
            f"{results['train_ptgm_env_steps_per_s']:.0f} env steps/s |",
            f"| flat SB3 {flat.upper()} training (4 envs, {args.rl_steps} env steps) | "
            f"{results[f'train_{flat}_env_steps_per_s']:.0f} env steps/s |",
            f"| **PTGM / flat {flat.upper()} training** | "
            f"{results['train_ptgm_env_steps_per_s'] / results[f'train_{flat}_env_steps_per_s']:.2f} |",
            f"| PTGM training, environments in subprocesses (`--subproc`) | "
            f"{results['train_ptgm_subproc_env_steps_per_s']:.0f} env steps/s |",
            f"| flat SB3 {flat.upper()} training, environments in subprocesses (`--subproc`) | "
            f"{results[f'train_{flat}_subproc_env_steps_per_s']:.0f} env steps/s |",
            f"| **PTGM / flat {flat.upper()} training, both `--subproc`** | "
            f"{results['train_ptgm_subproc_env_steps_per_s'] / results[f'train_{flat}_subproc_env_steps_per_s']:.2f} |"]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Throughput benchmarks", "", f"Command: `{command}` (machine: {results['machine']}; "
             f"{args.domain}, task {args.task}).", ""]
    if env_rows:
        lines += ["Environment steps per second. \"Without resets\" leaves out the time in `reset()`, the same "
                  "work with or without the low-level policy but more frequent when the policy finishes task "
                  "episodes sooner than random actions do. \"Env alone\" is the time in the task environment's "
                  "`step()` only, i.e. the simulator's speed on the very trajectories that loop produced (an agent "
                  "that walks about costs the simulator more than random actions that jitter in place); the "
                  "hierarchical loop's remaining time is the low-level policy and the wrapper.", "",
                  "| environment loop | env steps/s | without resets | env alone | env steps / episode |",
                  "|---|---|---|---|---|", *env_rows, ""]
    if other_rows:
        lines += ["| measurement | value |", "|---|---|", *other_rows]
    (out / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
