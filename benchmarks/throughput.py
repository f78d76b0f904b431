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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from ptgm.data.generate import GenerateConfig, generate, load_run_dataset
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.domains import get_domain
from ptgm.hrl.train import TrainConfig, load_pretrained, train
from ptgm.hrl.wrapper import GoalSelectionEnv, GoalSelectionVecEnv


def env_steps_per_second(make_env, steps: int, seed: int = 0) -> float:
    """Environment steps per second with uniformly random (high- or low-level) actions, resets included."""
    env = make_env()
    env.action_space.seed(seed)
    env.reset(seed=seed)
    done_steps = 0
    start = time.perf_counter()
    while done_steps < steps:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        done_steps += int(info.get("env_steps", 1))
        if terminated or truncated:
            env.reset()
    return done_steps / (time.perf_counter() - start)


def vec_env_steps_per_second(vec_env, steps: int, seed: int = 0) -> float:
    """The same for a VecEnv (SB3 auto-resets finished environments)."""
    vec_env.seed(seed)
    vec_env.action_space.seed(seed)
    vec_env.reset()
    done_steps = 0
    start = time.perf_counter()
    while done_steps < steps:
        actions = np.stack([vec_env.action_space.sample() for _ in range(vec_env.num_envs)])
        *_, infos = vec_env.step(actions)
        done_steps += sum(int(info.get("env_steps", 1)) for info in infos)
    return done_steps / (time.perf_counter() - start)


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="crafter")
    parser.add_argument("--run-dir", default="", help="run with pre-trained pieces (default: the demo's)")
    parser.add_argument("--task", default="", help="task (default: the domain's)")
    parser.add_argument("--n-envs", type=int, default=4, help="environments of the batched measurements")
    parser.add_argument("--env-steps", type=int, default=20_000, help="steps per environment measurement")
    parser.add_argument("--gen-transitions", type=int, default=40_000)
    parser.add_argument("--rl-steps", type=int, default=20_000, help="env steps per RL training measurement")
    parser.add_argument("--out", default="", help="output folder (default: results/DOMAIN)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    domain = get_domain(args.domain)
    args.run_dir = args.run_dir or ("runs/demo" if args.domain == "crafter" else f"runs/demo-{args.domain}")
    args.task = args.task or domain.default_task
    args.out = args.out or f"results/{args.domain}"
    flat = domain.flat_baseline
    results: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                                f"{__import__('os').cpu_count()} cores", "task": args.task}

    print("raw environment ...")
    results["raw_env_steps_per_s"] = env_steps_per_second(lambda: domain.make_env(args.task), args.env_steps)
    policy, codebook, _, _ = load_pretrained(args.run_dir)
    print("goal-selection environment (low-level policy in the loop) ...")
    results["hierarchical_env_steps_per_s"] = env_steps_per_second(
        lambda: GoalSelectionEnv(domain.make_env(args.task), policy, codebook.goal_features, k=10), args.env_steps)
    results["hierarchical_over_raw"] = results["hierarchical_env_steps_per_s"] / results["raw_env_steps_per_s"]
    print(f"{args.n_envs} environments, raw and batched goal selection ...")
    make_raw = [lambda: domain.make_env(args.task)] * args.n_envs
    results["raw_vec_env_steps_per_s"] = vec_env_steps_per_second(DummyVecEnv(make_raw), args.env_steps)
    results["hierarchical_vec_env_steps_per_s"] = vec_env_steps_per_second(
        GoalSelectionVecEnv(make_raw, policy, codebook.goal_features, k=10), args.env_steps)
    results["hierarchical_vec_over_raw_vec"] = (results["hierarchical_vec_env_steps_per_s"]
                                                / results["raw_vec_env_steps_per_s"])

    print("data generation (2 workers) ...")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        gen = generate(GenerateConfig(run_dir=tmp, domain=args.domain, transitions=args.gen_transitions,
                                      shard_transitions=args.gen_transitions // 2, workers=2))
        results["generation_transitions_per_s_incl_writing"] = gen["transitions"] / (time.perf_counter() - start)
        results["generation_transitions_per_s_playing"] = gen["transitions_per_second"]

    print("low-level pre-training ...")
    results["pretrain_samples_per_s"] = pretrain_samples_per_second(domain, args.run_dir)

    print(f"RL training, PTGM vs flat {flat} ...")
    with tempfile.TemporaryDirectory() as tmp:
        import shutil
        for stage in ["data", "lowlevel", "codebook", "prior"]:
            shutil.copytree(Path(args.run_dir) / stage, Path(tmp) / stage)
        for method in ["ptgm", flat]:
            summary = train(TrainConfig(run_dir=tmp, domain=args.domain, task=args.task, method=method, env_steps=args.rl_steps,
                                        eval_episodes=1, checkpoint_every=10**9))
            results[f"train_{method}_env_steps_per_s"] = summary["env_steps_per_second"]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    results["command"] = command.strip()
    (out / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Throughput benchmarks", "", f"Command: `{results['command']}` (machine: {results['machine']}).", "",
        "| measurement | value |", "|---|---|",
        f"| raw {args.domain} env, random actions, resets included ({args.task}) | "
        f"{results['raw_env_steps_per_s']:.0f} env steps/s |",
        f"| goal-selection env (low-level policy every step, k=10) | "
        f"{results['hierarchical_env_steps_per_s']:.0f} env steps/s |",
        f"| hierarchical / raw, one environment | {results['hierarchical_over_raw']:.2f} |",
        f"| raw env, {args.n_envs} in a DummyVecEnv | {results['raw_vec_env_steps_per_s']:.0f} env steps/s |",
        f"| goal selection, {args.n_envs} envs, batched low-level policy (GoalSelectionVecEnv, as in training) | "
        f"{results['hierarchical_vec_env_steps_per_s']:.0f} env steps/s |",
        f"| hierarchical / raw, {args.n_envs} environments | {results['hierarchical_vec_over_raw_vec']:.2f} |",
        f"| data generation, 2 workers, playing only | {results['generation_transitions_per_s_playing']:.0f} transitions/s |",
        f"| data generation, 2 workers, incl. start-up and Minari writing | {results['generation_transitions_per_s_incl_writing']:.0f} transitions/s |",
        f"| low-level pre-training (batch 512, 1 thread) | {results['pretrain_samples_per_s']:.0f} samples/s |",
        f"| PTGM training (PPO over goals, 4 envs) | {results['train_ptgm_env_steps_per_s']:.0f} env steps/s |",
        f"| flat SB3 {flat.upper()} training (4 envs) | {results[f'train_{flat}_env_steps_per_s']:.0f} env steps/s |",
    ]
    (out / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
