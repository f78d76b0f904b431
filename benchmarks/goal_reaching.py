"""Which steps of Crafter's tech tree the frozen low-level policy can take, one kind of progress at a time.

    OMP_NUM_THREADS=1 python benchmarks/goal_reaching.py --run-dir runs/crafter-long \\
        --out results/crafter-long/goal_reaching.md

`ptgm pretrain`'s goal-reaching test draws its starts from the first 200 steps of held-out episodes
and its goals at random, so it measures the early game. A long-horizon task needs the later steps:
mining stone, coal and iron, crafting the pickaxes, finding a diamond, and eating and drinking on the
way. Here each kind of progress (one more of an inventory entry: food, drink, wood, stone, coal,
iron, diamond, a sapling, or a tool) is tested on its own. A trial starts ``horizon`` steps before a
step where a held-out episode of the play gains that entry, restored by replaying the episode, and
runs the low-level policy for up to ``2 × horizon`` steps conditioned on one of:

- the data's goal: the goal features of the state right after the gain (a hindsight goal, as the
  policy was trained on);
- the nearest cluster goal to that state: what PTGM's high-level policy can ask for (each of its
  actions is one of the codebook's goals);
- a random state of the same episodes (the control: what the policy does unguided).

Beside them: how many of the codebook's goals hold the entry at all (the high level cannot ask for
an entry no goal holds).

A trial succeeds when the entry grows above its value at the start. Writes a Markdown table (with
this command) and a JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ptgm.data.dataset import split_episode_ids
from ptgm.data.generate import run_dataset_path
from ptgm.data.shards import EpisodeChunks
from ptgm.domains.crafter.env import INVENTORY_OFFSET, ITEMS
from ptgm.hrl.pretrained import Pretrained
from ptgm.lowlevel.evaluate import _replay
from ptgm.utils import write_report

#: The inventory entries tested, in the order of the tech tree (health grows by itself and is left out).
KINDS = ("drink", "food", "sapling", "wood", "wood_pickaxe", "wood_sword", "stone", "stone_pickaxe", "stone_sword",
         "coal", "iron", "iron_pickaxe", "iron_sword", "diamond")
CONDITIONS = ("data goal", "nearest cluster goal", "random state (control)")


def episode_starts(data) -> np.ndarray:
    """The first row of each episode of ``data``."""
    return np.searchsorted(data.episode_index, np.arange(data.n_episodes))


def gains(data, episodes: np.ndarray, column: int) -> list[tuple[int, int]]:
    """(episode, row) of every step of ``episodes`` after which inventory entry ``column`` is larger."""
    inventory = data.observations[:, INVENTORY_OFFSET + column].astype(np.int64)
    out = []
    starts = episode_starts(data)
    for episode in episodes:
        first, last = int(starts[episode]), int(data.episode_end[starts[episode]])
        rises = np.flatnonzero(inventory[first + 1 : last + 1] > inventory[first:last]) + first + 1
        out += [(int(episode), int(row)) for row in rises]
    return out


def run_trial(env, pieces: Pretrained, data, episode: int, first_row: int, start_row: int, goal: np.ndarray,
              column: int, steps: int, deterministic: bool) -> bool | None:
    """True when the policy conditioned on ``goal`` grows inventory entry ``column`` within ``steps`` steps from
    ``start_row`` of ``episode`` (whose first row is ``first_row``); None when the replay does not restore the
    recorded state."""
    obs = _replay(env, data, episode, first_row, start_row)
    if not np.array_equal(obs, data.observations[start_row]):
        return None
    start = int(obs[INVENTORY_OFFSET + column])
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(pieces.policy.act(obs, goal, deterministic))
        if int(obs[INVENTORY_OFFSET + column]) > start:
            return True
        if terminated or truncated:
            return False
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/crafter", help="run directory with the play and the pieces")
    parser.add_argument("--trials", type=int, default=30, help="trials per kind of progress and condition (at most)")
    parser.add_argument("--horizon", type=int, default=10, help="steps between a trial's start and the data's gain "
                        "(PTGM's k); the policy gets twice as many")
    parser.add_argument("--deterministic", action="store_true", help="the low-level policy's most likely actions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/crafter/goal_reaching.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # the policy's sampled actions
    began = time.time()
    pieces = Pretrained.load(args.run_dir)
    domain = pieces.domain_plugin
    chunks = EpisodeChunks.open(run_dataset_path(args.run_dir))
    # The episodes `ptgm pretrain` held out (its own split): the policy never trained on them.
    trained = json.loads((Path(args.run_dir) / "lowlevel" / "DONE.json").read_text())["config"]
    _, held_out = split_episode_ids(chunks.n_episodes, trained["val_fraction"], trained["seed"])
    data = chunks.load(held_out)
    episodes = np.flatnonzero(data.episode_seeds >= 0)
    starts = episode_starts(data)
    rng = np.random.default_rng(args.seed)
    env = domain.make_env(None, max_steps=100_000)
    rows = []
    for kind in KINDS:
        column = ITEMS.index(kind)
        events = [(ep, row) for ep, row in gains(data, episodes, column) if row - args.horizon >= starts[ep]]
        picked = [events[i] for i in rng.permutation(len(events))[: args.trials]]
        counts = {name: [0, 0] for name in CONDITIONS}  # successes, trials
        for episode, row in picked:
            start = row - args.horizon
            reached = data.observations[row]
            features = domain.goal_features(reached[None])
            nearest = pieces.codebook.goal_features[pieces.codebook.assign(features)[0]][None]
            random_state = data.observations[int(rng.integers(len(data.observations)))]
            goals = {
                "data goal": features[0],
                "nearest cluster goal": pieces.compose_goal(nearest, data.observations[start][None])[0],
                "random state (control)": domain.goal_features(random_state[None])[0],
            }
            for name, goal in goals.items():
                ok = run_trial(env, pieces, data, episode, int(starts[episode]), start, goal, column, 2 * args.horizon,
                               args.deterministic)
                if ok is not None:
                    counts[name][0] += int(ok)
                    counts[name][1] += 1
        # How many of the high level's goals hold the entry: a goal none holds cannot be asked for.
        held = int((pieces.codebook.goal_observations[:, INVENTORY_OFFSET + column] > 0).sum())
        row = {"kind": kind, "events": len(events), "cluster_goals_holding": held,
               **{name: {"successes": s, "trials": n, "rate": s / n if n else None} for name, (s, n) in counts.items()}}
        rows.append(row)
        print(f"{kind}: {len(events)} gains; " + ", ".join(
            f"{name} {row[name]['rate']:.2f}" if row[name]["rate"] is not None else f"{name} -" for name in CONDITIONS),
            flush=True)
    command = "python benchmarks/goal_reaching.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# The low-level policy on each step of Crafter's tech tree", "",
             f"Command: `{command.strip()}`", "",
             (f"Pieces from `{args.run_dir}`; {len(episodes)} held-out play episodes (not trained on). A trial starts "
             f"{args.horizon} steps before the play gains the entry and succeeds when the policy "
             f"({'most likely' if args.deterministic else 'sampled'} actions) gains it within {2 * args.horizon} "
             f"steps. Gains: how many the held-out episodes hold (at most {args.trials} are tried). "
             f"{time.time() - began:.0f} s in all."), "",
             "| entry | gains in the play | cluster goals holding it | trials | " + " | ".join(CONDITIONS) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(CONDITIONS)]
    for row in rows:
        cells = [f"{row[name]['rate']:.2f}" if row[name]["rate"] is not None else "–" for name in CONDITIONS]
        held = f"{row['cluster_goals_holding']} of {pieces.codebook.n_goals}"
        lines.append(f"| {row['kind']} | {row['events']} | {held} | {row[CONDITIONS[0]]['trials']} | "
                     + " | ".join(cells) + " |")
    out = Path(args.out)
    write_report(out, lines, {"command": command.strip(), "run_dir": args.run_dir, "horizon": args.horizon,
                              "deterministic": args.deterministic, "held_out_episodes": len(episodes), "rows": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
