"""How many Kitchen subtasks the pre-trained low-level policy completes when its goals are chosen well.

    python benchmarks/kitchen_oracle.py                          # runs/kitchen, mkbl in its best order
    python benchmarks/kitchen_oracle.py --run-dir runs/demo-kitchen --episodes 3

PTGM's score is bounded by what its frozen low-level policy does with the goals a high-level
policy can give it. This separates that bound from high-level learning. Each episode first
records the scripted play controller doing the task's subtasks in one order (the best order of
`kitchen_ceiling.py`) from a reset seed; then, from the same seed, the low-level policy acts and
every k steps a tracking oracle picks its goal: it finds the recorded state nearest the current
one (standardised goal features, searching forward from its last match) and takes the state
k steps after it as the target, given to the policy

- ``exact``: as it is (the kind of goal hindsight relabelling trained the policy on), or
- ``codebook``: as the codebook goal nearest it (a choice PTGM's high-level policy can make),
  composed with the current object state as in training.

Both with the policy's sampled and its most likely (deterministic) actions. The score is the
environment's count of the task's subtasks completed in the 280-step episode; the scripted
controller's own score on the same seeds is the first row. Writes a Markdown table (with this
command) and a JSON file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ptgm.clustering.codebook import Codebook
from ptgm.domains import get_domain
from ptgm.domains.kitchen.controller import perform_subtasks
from ptgm.domains.kitchen.env import KitchenEnv, parse_task
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.utils import write_report

#: How far ahead of its last match the oracle looks for the current state in the recording.
SEARCH_WINDOW = 40


def run_oracle(env: KitchenEnv, policy: GoalConditionedPolicy, codebook: Codebook | None, recording: np.ndarray,
               seed: int, k: int, mode: str, deterministic: bool) -> tuple[int, dict[str, int]]:
    """Score of the low-level policy led by the tracking oracle, and the env step of each completion.

    The recording is matched in the codebook's standardised feature space (plain features without one).
    """
    domain = get_domain("kitchen")
    scale = codebook.feature_scale if codebook is not None else 1.0
    features = domain.goal_features(recording) / scale
    obs, _ = env.reset(seed=seed)
    match, step, done, completed, info = 0, 0, False, {}, {}
    while not done:
        current = domain.goal_features(obs[None])[0] / scale
        window = features[match:match + SEARCH_WINDOW]
        match += int(((window - current) ** 2).sum(1).argmin())
        target = recording[min(match + k, len(recording) - 1)][None]
        if mode == "exact":
            goal = domain.goal_features(target)
        else:
            goal_index = codebook.assign(domain.goal_features(target))[0]
            goal = domain.compose_goal(codebook.goal_features[goal_index][None], obs[None])
        goal_t = torch.as_tensor(goal, dtype=torch.float32)
        for _ in range(k):
            with torch.inference_mode():
                action = policy.sample(torch.as_tensor(obs)[None], goal_t, deterministic)[0].numpy()
            obs, _, terminated, truncated, info = env.step(action)
            step += 1
            for name in info["step_task_completions"]:
                completed[name] = step
            done = terminated or truncated
            if done:
                break
    return int(info.get("score", len(completed))), completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/kitchen", help="run directory with the pre-trained pieces")
    parser.add_argument("--task", default="mkbl")
    parser.add_argument("--order", default="microwave,kettle,bottom burner,light switch",
                        help="the subtask order the scripted controller records (comma-separated)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--k", type=int, default=10, help="environment steps per goal")
    parser.add_argument("--modes", nargs="+", default=["exact", "codebook"], choices=["exact", "codebook"],
                        help="goal kinds to try (codebook needs the run's `ptgm cluster`)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/kitchen/oracle.md", help="Markdown table; JSON beside it")
    args = parser.parse_args()
    torch.set_num_threads(1)

    order = parse_task(args.order)
    if sorted(order) != sorted(parse_task(args.task)):
        parser.error(f"--order {args.order} is not an order of the subtasks of {args.task}")
    run_dir = Path(args.run_dir)
    policy, checkpoint = GoalConditionedPolicy.load(run_dir / "lowlevel" / "policy.pt")
    codebook = None
    if (run_dir / "codebook" / "codebook.npz").exists():
        codebook = Codebook.load(run_dir / "codebook" / "codebook.npz")
        codebook.check_matches(checkpoint["fingerprint"], "the low-level policy")
    elif "codebook" in args.modes:
        parser.error(f"{run_dir} has no codebook: run `ptgm cluster --run-dir {run_dir} --domain kitchen` or pass "
                     "--modes exact")
    env = KitchenEnv(args.task)
    rng = np.random.default_rng(args.seed)
    variants = [(mode, det) for mode in args.modes for det in (False, True)]
    scores: dict[str, list[int]] = {"scripted controller": []}
    landing: dict[str, dict[str, list[int]]] = {}
    start = time.perf_counter()
    for episode in range(args.episodes):
        seed = args.seed * 100_000 + episode
        recording, completed = perform_subtasks(env, order, rng, seed)
        scores["scripted controller"].append(sum(name in completed for name in order))
        for mode, det in variants:
            name = f"{mode} goals, {'deterministic' if det else 'sampled'} low-level actions"
            score, completed = run_oracle(env, policy, codebook, recording, seed, args.k, mode, det)
            scores.setdefault(name, []).append(score)
            for subtask, at in completed.items():
                landing.setdefault(name, {}).setdefault(subtask, []).append(at)
        print(f"episode {episode}: " + ", ".join(f"{name}: {values[-1]}" for name, values in scores.items()),
              flush=True)
    elapsed = time.perf_counter() - start

    task_subtasks = parse_task(args.task)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"# Kitchen `{args.task}`: the low-level policy of `{args.run_dir}` led by a tracking oracle", "",
        f"Command: `{command}`", "",
        f"{args.episodes} episodes, k = {args.k}, recorded order: {' → '.join(order)}. Score: subtasks of the task "
        "completed in the 280-step episode (mean ± std); then the mean env step at which each subtask was "
        "completed and, in brackets, in how many episodes.", "",
        "| goals given to the low-level policy | score | " + " | ".join(task_subtasks) + " |",
        "|---|---|" + "---|" * len(task_subtasks),
    ]
    for name, values in scores.items():
        cells = []
        for subtask in task_subtasks:
            at = landing.get(name, {}).get(subtask, [])
            cells.append(f"{np.mean(at):.0f} ({len(at)})" if at else "– (0)")
        if name == "scripted controller":
            cells = ["" for _ in task_subtasks]
        lines.append(f"| {name} | {np.mean(values):.2f} ± {np.std(values):.2f} | " + " | ".join(cells) + " |")
    out = Path(args.out)
    write_report(out, lines, {"command": command, "run_dir": args.run_dir, "task": args.task, "order": list(order),
                              "k": args.k, "episodes": args.episodes, "scores": scores, "landing_steps": landing,
                              "seconds": elapsed})
    print("\n".join(lines) + f"\n({elapsed:.0f} s) wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
