"""Reproduce the Crafter results: PTGM vs flat PPO on collect_wood and collect_stone, 3 seeds.

    python benchmarks/crafter_results.py                      # everything, resumable
    python benchmarks/crafter_results.py --transitions 200000 --env-steps 50000   # smaller

Pre-training stages run once in RUN_DIR; RL runs go two at a time (one per core) as
separate `ptgm train` processes, and any finished stage or run is reused, so the script
can be stopped and restarted. Results go to results/crafter/: curves.csv (every training
episode of every run), summary.md (final success, env steps to threshold), and
learning_curves.png, with the command written in summary.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ptgm.demo import success_curve
from ptgm.plots import plot_learning_curves


def run(cmd: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


WINDOW = 20  # training episodes in the rolling success rate


def steps_to_threshold(x: np.ndarray, y: np.ndarray, threshold: float, window: int = WINDOW) -> float | None:
    """First env step at which the success rate over the last ``window`` episodes reaches ``threshold``.

    ``x, y`` come from :func:`success_curve` (a leading (0, 0) point, then one point per episode);
    points before ``window`` episodes have finished are skipped, since one lucky early episode
    would otherwise count as reaching the threshold.
    """
    hit = np.flatnonzero(y[window:] >= threshold)
    return float(x[window + hit[0]]) if len(hit) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/crafter")
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--pretrain-steps", type=int, default=30_000)
    parser.add_argument("--prior-steps", type=int, default=15_000)
    parser.add_argument("--n-clusters", type=int, default=64)
    parser.add_argument("--tasks", nargs="+", default=["collect_wood", "collect_stone"])
    parser.add_argument("--methods", nargs="+", default=["ptgm", "ppo"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", default="results/crafter")
    args = parser.parse_args()
    ptgm = [sys.executable, "-m", "ptgm.cli"]
    rd = ["--run-dir", args.run_dir]
    logs = Path(args.run_dir) / "logs"
    for stage, extra in [
        ("generate", ["--transitions", str(args.transitions), "--shard-transitions", "25000", "--resume"]),
        ("pretrain", ["--steps", str(args.pretrain_steps), "--resume"]),
        ("cluster", ["--n-clusters", str(args.n_clusters)]),
        ("prior", ["--steps", str(args.prior_steps), "--resume"]),
    ]:
        print(f"[results] {stage} ...", flush=True)
        if run(ptgm + [stage] + rd + extra, logs / f"{stage}.log") != 0:
            sys.exit(f"{stage} failed; see {logs / f'{stage}.log'}")
    jobs = [(task, method, seed) for seed in range(args.seeds) for task in args.tasks for method in args.methods]

    def train(job):
        task, method, seed = job
        cmd = ptgm + ["train"] + rd + ["--task", task, "--method", method, "--seed", str(seed),
                                       "--env-steps", str(args.env_steps), "--eval-episodes", "100", "--resume"]
        code = run(cmd, logs / f"train-{task}-{method}-{seed}.log")
        print(f"[results] {task}/{method}/seed{seed} exit {code}", flush=True)
        return code

    with ThreadPoolExecutor(args.parallel) as pool:
        codes = list(pool.map(train, jobs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves_by_task, summaries = [], {}, []
    for (task, method, seed), code in zip(jobs, codes):
        directory = Path(args.run_dir) / "rl" / task / f"{method}-seed{seed}"
        done = directory / "DONE.json"
        if code != 0 or not done.exists():
            continue
        summary = json.loads(done.read_text())["summary"]
        x, y = success_curve(directory / "episodes.csv", window=WINDOW)
        # Plot only full windows: the first few episodes' rates are too noisy to mean anything.
        curves_by_task.setdefault(task, {}).setdefault(method, []).append((x[WINDOW:], y[WINDOW:]))
        summary["steps_to_0.9"] = steps_to_threshold(x, y, 0.9)
        summary["first_window_success"] = float(y[WINDOW]) if len(y) > WINDOW else float("nan")
        # Area under the training curve, normalised by the budget: mean rolling success over env steps.
        summary["auc"] = float(np.trapezoid(y, x) / x[-1]) if len(x) > 1 else float("nan")
        summaries.append(summary)
        with open(directory / "episodes.csv") as f:
            for r in csv.DictReader(f):
                rows.append({"task": task, "method": method, "seed": seed, **r})
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["task", "method", "seed", "env_steps", "return", "length", "success"])
        writer.writeheader()
        writer.writerows(rows)
    for task, curves in curves_by_task.items():
        plot_learning_curves(curves, out / f"learning_curves_{task}.png",
                             title=f"Crafter {task}: training success (last 20 episodes), mean ± std over seeds")
    data = json.loads((Path(args.run_dir) / "data" / "coverage.json").read_text())
    low = json.loads((Path(args.run_dir) / "lowlevel" / "DONE.json").read_text())["summary"]
    prior = json.loads((Path(args.run_dir) / "prior" / "DONE.json").read_text())["summary"]
    reach = low["goal_reaching"]
    lines = [
        "# Crafter: PTGM vs flat PPO", "",
        f"Command: `python benchmarks/crafter_results.py {' '.join(sys.argv[1:])}`".rstrip() + "", "",
        f"- dataset: {data['episodes']} episodes, {data['transitions']} transitions of scripted play",
        f"- low-level policy: held-out action accuracy {low['val_action_accuracy']:.3f}; goal-reaching test "
        f"{reach['success_rate']:.2f} with the true goal vs {reach['control_success_rate']:.2f} with a shuffled goal "
        f"({reach['trials']} trials, horizon {reach['horizon']})",
        f"- goal prior: held-out accuracy {prior['val_accuracy']:.3f} (top-5 {prior['val_top5_accuracy']:.3f}) over "
        f"{prior['n_goals']} goals",
        "",
        "Final evaluation: 100 episodes per run with the trained (stochastic) policy; mean ± std over seeds.",
        "",
        f"Training success is the rate over the last {WINDOW} training episodes; \"first {WINDOW}\" is that rate "
        f"over each run's first {WINDOW} episodes (before learning has had much effect); AUC is the mean of the "
        "training success curve over the env-step budget.",
        "",
        f"| task | method | seeds | env steps | eval success | first {WINDOW} episodes success | training AUC | "
        "env steps to 0.9 training success (per seed) | env steps/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        for method in args.methods:
            group = [s for s in summaries if s["task"] == task and s["method"] == method]
            if not group:
                continue
            success = np.array([s["eval_success_rate"] for s in group])
            reach_steps = ", ".join("never" if s["steps_to_0.9"] is None else f"{s['steps_to_0.9']:.0f}" for s in group)
            first = np.array([s["first_window_success"] for s in group])
            auc = np.array([s["auc"] for s in group])
            lines.append(f"| {task} | {method} | {len(group)} | {group[0]['env_steps']} | {success.mean():.2f} ± "
                         f"{success.std():.2f} | {first.mean():.2f} ± {first.std():.2f} | "
                         f"{auc.mean():.2f} ± {auc.std():.2f} | {reach_steps} | "
                         f"{np.mean([s['env_steps_per_second'] for s in group]):.0f} |")
    for picture in ("goals.png", "projection.png"):  # the goal codebook these runs chose from
        shutil.copy(Path(args.run_dir) / "codebook" / picture, out / f"codebook_{picture}")
    shutil.copy(Path(args.run_dir) / "data" / "coverage.md", out / "dataset_coverage.md")
    lines += ["", "Learning curves: " + ", ".join(f"`learning_curves_{t}.png`" for t in curves_by_task),
              "", "Goal codebook: `codebook_goals.png` (the state nearest each K-means centre), "
              "`codebook_projection.png` (2-D projection of goal features coloured by cluster); dataset coverage "
              "(fraction of play episodes unlocking each achievement): `dataset_coverage.md`"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
