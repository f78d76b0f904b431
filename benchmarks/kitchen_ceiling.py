"""How many subtasks the scripted controller itself completes in one Kitchen episode, per subtask order.

    python benchmarks/kitchen_ceiling.py                      # mkbl, all 24 orders, 5 episodes each
    python benchmarks/kitchen_ceiling.py --episodes 2 --orders "microwave,kettle,bottom burner,light switch"

The play data PTGM learns from is this controller's. A low-level policy that imitates it
can at best be as fast, so the controller's score within the task's step limit (280, as in
FrankaKitchen-v1 and D4RL) is a ceiling for what any method built on that data reaches. Each
episode resets the task environment and runs the controller on the subtasks in the given
order, one after the other (a subtask whose script ends without completing it is left
behind), until the step limit. The score is the environment's: subtasks of the task completed.
Writes a Markdown table (with this command) and a JSON file.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ptgm.domains.kitchen.controller import KitchenScriptedController, perform_subtasks
from ptgm.domains.kitchen.env import KitchenEnv, parse_task
from ptgm.utils import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="mkbl", help="Kitchen task (preset or comma-separated subtasks)")
    parser.add_argument("--orders", nargs="+", default=None,
                        help="subtask orders to try, each comma-separated (default: every order of the task)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per order")
    parser.add_argument("--noise", type=float, default=None, help="action noise std (default: the play data's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/kitchen/ceiling.md", help="Markdown table; JSON beside it")
    args = parser.parse_args()

    subtasks = parse_task(args.task)
    orders = ([parse_task(o) for o in args.orders] if args.orders else list(itertools.permutations(subtasks)))
    for order in orders:
        if sorted(order) != sorted(subtasks):
            parser.error(f"order {', '.join(order)} is not an order of the task's subtasks {', '.join(subtasks)}")
    env = KitchenEnv(args.task)
    rng = np.random.default_rng(args.seed)
    rows, start = [], time.perf_counter()
    for i, order in enumerate(orders):
        scores, times = [], []
        for e in range(args.episodes):
            _, completed = perform_subtasks(env, order, rng, args.seed * 100_000 + i * 100 + e, args.noise)
            completed = {name: at for name, at in completed.items() if name in subtasks}
            score = len(completed)
            scores.append(score)
            times.append(max(completed.values()) if score == len(subtasks) else None)
        full = [t for t in times if t is not None]
        rows.append({"order": list(order), "mean_score": float(np.mean(scores)), "scores": scores,
                     "all_done_steps": float(np.mean(full)) if full else None})
        print(f"{' → '.join(order):60s} mean {np.mean(scores):.2f}  {scores}", flush=True)
    elapsed = time.perf_counter() - start
    rows.sort(key=lambda r: -r["mean_score"])
    overall = float(np.mean([s for r in rows for s in r["scores"]]))
    print(f"mean over all orders {overall:.2f}; best order {rows[0]['mean_score']:.2f} ({elapsed:.0f} s)")

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"# Scripted Kitchen controller on `{args.task}`: subtasks completed per episode, by order",
        "",
        f"Command: `{command}`",
        "",
        (f"{args.episodes} episodes per order, {env.max_steps}-step episodes, action noise std "
         f"{KitchenScriptedController(env, rng).action_noise if args.noise is None else args.noise} (the play "
         "data's unless told). Score: subtasks of the task the environment counted as completed. "
         "\"All done at\": mean env step of the last completion, over episodes that completed all."),
        "",
        f"Mean over all {len(rows)} orders: **{overall:.2f}**; best order: **{rows[0]['mean_score']:.2f}**.",
        "",
        "| order | mean score | scores | all done at |",
        "|---|---:|---|---:|",
    ]
    for r in rows:
        at = f"{r['all_done_steps']:.0f}" if r["all_done_steps"] is not None else "–"
        lines.append(f"| {' → '.join(r['order'])} | {r['mean_score']:.2f} | {' '.join(map(str, r['scores']))} | {at} |")
    out = Path(args.out)
    write_report(out, lines, {"command": command, "task": args.task, "episodes": args.episodes, "seed": args.seed,
                              "rows": rows, "mean_over_orders": overall, "seconds": elapsed})
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
