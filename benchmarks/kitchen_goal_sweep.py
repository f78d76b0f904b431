"""Which Kitchen cluster goals complete which subtask, from a state partway through the task.

    python benchmarks/kitchen_goal_sweep.py                              # runs/kitchen, after the microwave
    python benchmarks/kitchen_goal_sweep.py --after "microwave,bottom burner" --run-dir runs/kx-std

PTGM's high-level policy can only finish a subtask if some cluster goal makes the frozen
low-level policy finish it. This holds the goal fixed and looks: in each episode the scripted
play controller first does the ``--after`` subtasks from a reset seed; then, from that state,
the low-level policy is given one codebook goal (composed with the current state every k steps,
as during training) for ``--steps`` environment steps. Every goal is tried from the same states
(the same seeds and controller noise). For each subtask not done yet, the table lists the goals
that completed it at least once, with their rate, and the probability the goal prior gives the
goal in that state (the KL term pulls the high-level policy towards the prior). Writes a
Markdown table (with this command) and a JSON file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ptgm.clustering.codebook import Codebook
from ptgm.domains import get_domain
from ptgm.domains.kitchen.controller import perform_subtasks
from ptgm.domains.kitchen.env import SUBTASKS, KitchenEnv, parse_task
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.prior.model import GoalPrior
from ptgm.utils import write_report


def run_goal(env: KitchenEnv, policy: GoalConditionedPolicy, goal_features: np.ndarray, obs: np.ndarray,
             steps: int, k: int, deterministic: bool) -> set[str]:
    """Subtasks the low-level policy completes in ``steps`` env steps pursuing one goal, from ``obs``."""
    domain = get_domain("kitchen")
    completed: set[str] = set()
    for step in range(steps):
        if step % k == 0:
            goal = torch.as_tensor(domain.compose_goal(goal_features[None], obs[None]), dtype=torch.float32)
        with torch.inference_mode():
            action = policy.sample(torch.as_tensor(obs)[None], goal, deterministic)[0].numpy()
        obs, _, terminated, truncated, info = env.step(action)
        completed.update(info["step_task_completions"])
        if terminated or truncated:
            break
    return completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/kitchen", help="run directory with the pre-trained pieces")
    parser.add_argument("--after", default="microwave", help="subtasks the scripted controller does first")
    parser.add_argument("--episodes", type=int, default=5, help="start states (reset seeds) per goal")
    parser.add_argument("--steps", type=int, default=80, help="env steps the low-level policy pursues the goal")
    parser.add_argument("--k", type=int, default=10, help="env steps between re-compositions of the goal")
    parser.add_argument("--low-level", choices=["deterministic", "stochastic"], default="deterministic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/kitchen/goal_sweep.md", help="Markdown table; JSON beside it")
    args = parser.parse_args()
    torch.set_num_threads(1)

    after = parse_task(args.after)
    run_dir = Path(args.run_dir)
    policy, checkpoint = GoalConditionedPolicy.load(run_dir / "lowlevel" / "policy.pt")
    codebook = Codebook.load(run_dir / "codebook" / "codebook.npz")
    codebook.check_matches(checkpoint["fingerprint"], "the low-level policy")
    prior, _ = GoalPrior.load(run_dir / "prior" / "prior.pt")
    domain = get_domain("kitchen")
    captions = [domain.describe_goal(observation) for observation in codebook.goal_observations]
    # Every subtask is a task subtask here, so the environment reports any completion.
    env = KitchenEnv(",".join(SUBTASKS))
    deterministic = args.low_level == "deterministic"

    start = time.perf_counter()
    # hits[goal][subtask] = episodes in which pursuing the goal completed the subtask.
    hits = np.zeros((codebook.n_goals, len(SUBTASKS)), int)
    prior_probs, reached = [], 0
    for episode in tqdm(range(args.episodes), desc="start states"):
        seed = args.seed * 100_000 + episode
        for goal in range(codebook.n_goals):
            observations, completed = perform_subtasks(env, after, np.random.default_rng(seed), seed)
            if goal == 0:
                reached += all(name in completed for name in after)
                with torch.inference_mode():
                    logits = prior(torch.as_tensor(observations[-1])[None])[0]
                prior_probs.append(torch.softmax(logits, -1).numpy())
            for name in run_goal(env, policy, codebook.goal_features[goal], observations[-1], args.steps, args.k,
                                 deterministic) - set(completed):
                hits[goal, SUBTASKS.index(name)] += 1
    elapsed = time.perf_counter() - start
    mean_prior = np.mean(prior_probs, axis=0)

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"# Kitchen: which cluster goal of `{args.run_dir}` completes which subtask after {', '.join(after)}", "",
        f"Command: `{command}`", "",
        f"{args.episodes} start states (the scripted controller completed {', '.join(after)} in {reached} of them); "
        f"each of the {codebook.n_goals} goals pursued for {args.steps} env steps with the "
        f"{args.low_level} low-level policy, re-composed every {args.k} steps. Per subtask not yet done: the "
        "goals that completed it, as `goal (completion rate, prior probability)`; the goal's caption is the "
        "subtasks already done in its state.", "",
        "| subtask | goals that complete it | best rate | prior mass on those goals |",
        "|---|---|---|---|",
    ]
    for index, name in enumerate(SUBTASKS):
        if name in after:
            continue
        rates = hits[:, index] / args.episodes
        goals = np.flatnonzero(rates)[np.argsort(-rates[rates > 0], kind="stable")]
        cells = ", ".join(f"{g} [{captions[g]}] ({rates[g]:.1f}, {mean_prior[g]:.2g})" for g in goals) or "none"
        lines.append(f"| {name} | {cells} | {rates.max():.1f} | {mean_prior[goals].sum():.2g} |")
    out = Path(args.out)
    write_report(out, lines, {"command": command, "run_dir": args.run_dir, "after": list(after),
                              "episodes": args.episodes, "steps": args.steps, "k": args.k, "low_level": args.low_level,
                              "subtasks": list(SUBTASKS), "captions": captions, "completions": hits.tolist(),
                              "mean_prior": mean_prior.tolist(), "start_states_reached": reached, "seconds": elapsed})
    print("\n".join(lines) + f"\n({elapsed:.0f} s) wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
