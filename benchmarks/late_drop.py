"""Late-training stability of recorded benchmark runs: what each loses from its best late window to its end.

    python benchmarks/late_drop.py                     # the Kitchen 1M-step benchmarks of results/
    python benchmarks/late_drop.py results/kitchen-n200-1m results/crafter-long --out results/late_drop.md

For every finished run in each results folder's ``curves.csv`` (any record version), the best mean training
score over 100k env steps starting at or after 300k, minus the mean over the last 100k
(:func:`ptgm.bench.metrics.late_drop`, the measure `ptgm bench` summaries carry; runs shorter than 400k env
steps have none). The score is the domain's: Kitchen's subtasks, Crafter's success. Writes a Markdown table
(with this command) and a JSON file beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

from ptgm.bench.metrics import LATE_START, LATE_WINDOW, late_drop
from ptgm.domains import get_domain
from ptgm.train import episode_row
from ptgm.utils import write_report

KITCHEN_1M = ("results/kitchen", "results/kitchen-n200-1m", "results/kitchen-n200-1m-anneal",
              "results/kitchen-n200-1m-ent0", "results/kitchen-n200-1m-kl0")


def recorded_episodes(folder: Path) -> tuple[dict, dict[tuple[str, str, int], list[dict]]]:
    """A results folder's benchmark settings and its finished runs' training episodes, by (task, method, seed)."""
    record = json.loads((folder / "summary.json").read_text())
    finished = {(r["task"], r["method"], r["seed"]) for r in record["runs"] if not r.get("in_progress")}
    episodes: dict[tuple[str, str, int], list[dict]] = {}
    with open(folder / "curves.csv") as f:
        for row in csv.DictReader(f):
            key = (row["task"], row["method"], int(row["seed"]))
            if key in finished:
                episodes.setdefault(key, []).append(episode_row(row))
    return record["config"], episodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", default=list(KITCHEN_1M), help="results folders of `ptgm bench`")
    parser.add_argument("--out", default="results/late_drop.md")
    args = parser.parse_args()
    rows = []
    for folder in map(Path, args.results):
        if not (folder / "summary.json").exists() or not (folder / "curves.csv").exists():
            print(f"late_drop.py: error: {folder} has no summary.json and curves.csv of a `ptgm bench`; give the "
                  "results folder of one.", file=sys.stderr)
            return 2
        config, runs = recorded_episodes(folder)
        domain = get_domain(config["domain"])
        for (task, method, seed), episodes in sorted(runs.items()):
            score = domain.task_score(task)  # "return" or "success", a column of the episodes
            drop = late_drop(episodes, score)
            rows.append({"results": str(folder), "task": task, "method": method, "seed": seed, "score": score,
                         "env_steps": episodes[-1]["env_steps"] if episodes else 0, "late_drop": drop})
    command = "python benchmarks/late_drop.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    lines = ["# Late-training stability of recorded runs", "", f"Made by `{command}`.", "",
             f"Each finished run's best mean training score over {LATE_WINDOW} env steps starting at or after "
             f"{LATE_START}, minus its mean over the last {LATE_WINDOW} env steps (0: it ends at its best; — : the "
             "run is too short to tell). Scores: Kitchen's subtasks per episode, Crafter's success.", "",
             "| results | task | method | seed | env steps | loss |", "|---|---|---|---|---:|---:|"]
    for row in rows:
        loss = "—" if row["late_drop"] is None else f"{row['late_drop']:.2f}"
        lines.append(f"| `{row['results']}` | {row['task']} | {row['method']} | {row['seed']} | "
                     f"{row['env_steps']} | {loss} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, lines, {"command": command, "window": LATE_WINDOW, "start": LATE_START, "runs": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
