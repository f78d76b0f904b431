"""How well the low-level policy imitates each action of the play, on held-out episodes.

    OMP_NUM_THREADS=1 python benchmarks/action_accuracy.py --run-dir runs/crafter-long \\
        --policies runs/crafter-long/lowlevel/policy.pt runs/crafter-long-delta/lowlevel/policy.pt \\
        --out results/crafter-long/action_accuracy.md

The overall held-out accuracy of `ptgm pretrain` is dominated by the common actions (moving, noop,
"do"); a long-horizon task hangs on the rare ones (placing a table, crafting a pickaxe), each a
fraction of a percent of the play. Here every action of the held-out episodes (those `ptgm pretrain`
held out, from its own settings) is scored on its own: the fraction of its steps where the policy's
most likely action is the data's, and the mean probability the policy gives it, with hindsight goals
drawn as in training. Two goal horizons: ``1`` (the goal is the very next state, which for a
crafting step holds the crafted tool, so the action is fully determined) and ``1..k_max`` (as in
training). Discrete action spaces only. Writes a Markdown table (with this command) and a JSON file
beside it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from ptgm.data.dataset import split_episode_ids
from ptgm.data.generate import run_dataset_path
from ptgm.data.relabel import hindsight_goal_rows
from ptgm.data.shards import EpisodeChunks
from ptgm.domains import get_domain
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.utils import PTGMError, write_report


def action_names(domain_name: str, n: int) -> list[str]:
    if domain_name == "crafter":
        from ptgm.domains.crafter.env import ACTIONS

        return list(ACTIONS)
    return [f"action {i}" for i in range(n)]


def per_action(policy: GoalConditionedPolicy, observations: np.ndarray, goals: np.ndarray,
               actions: np.ndarray, n_actions: int, batch: int = 8192) -> dict:
    """Accuracy of the most likely action and mean probability of the data's action, overall and per action."""
    best, prob = [], []
    with torch.inference_mode():
        for i in range(0, len(actions), batch):
            obs, goal = torch.as_tensor(observations[i:i + batch]), torch.as_tensor(goals[i:i + batch])
            dist = policy.distribution(obs, goal)  # categorical: its argmax is the policy's deterministic action
            best.append(dist.logits.argmax(-1).numpy())
            prob.append(dist.log_prob(torch.as_tensor(actions[i:i + batch])).exp().numpy())
    best, prob = np.concatenate(best), np.concatenate(prob)
    rows = {}
    for a in range(n_actions):
        mask = actions == a
        rows[a] = {"steps": int(mask.sum()), "accuracy": float(np.mean(best[mask] == a)) if mask.any() else None,
                   "probability": float(prob[mask].mean()) if mask.any() else None}
    return {"accuracy": float(np.mean(best == actions)), "actions": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/crafter-long", help="run whose play data is read")
    parser.add_argument("--domain", default="crafter")
    parser.add_argument("--policies", nargs="+", default=None,
                        help="low-level policies to score side by side (default: RUN_DIR/lowlevel/policy.pt)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hindsight goals drawn")
    parser.add_argument("--out", default="results/crafter-long/action_accuracy.md")
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    paths = [Path(p) for p in (args.policies or [run_dir / "lowlevel" / "policy.pt"])]
    domain = get_domain(args.domain)
    loaded = [GoalConditionedPolicy.load(path) for path in paths]
    if any(not policy.discrete for policy, _ in loaded):
        raise PTGMError("action_accuracy.py scores discrete actions; a policy here has continuous ones.")
    if len({ckpt.get("fingerprint") for _, ckpt in loaded}) != 1:
        raise PTGMError("These policies were trained on different datasets; score policies of one play only.")
    # The held-out episodes of `ptgm pretrain` (the first policy's own stage settings).
    stage = json.loads((paths[0].parent / "DONE.json").read_text())["config"]
    chunks = EpisodeChunks.open(run_dataset_path(run_dir, None), domain.dataset_observation_key)
    _, val_episodes = split_episode_ids(chunks.n_episodes, stage["val_fraction"], stage["seed"])
    data = chunks.load(np.sort(val_episodes))
    rows = data.action_rows(np.arange(data.n_episodes))
    features = domain.goal_features(data.observations)
    actions = data.actions[rows]
    n_actions = loaded[0][0].action_dim
    names = action_names(domain.name, n_actions)
    horizons = {"1": (1, 1), f"1..{stage['k_max']}": (stage["k_min"], stage["k_max"])}
    results = {}
    for label, (k_min, k_max) in horizons.items():
        goal_rows = hindsight_goal_rows(rows, data.episode_end, np.random.default_rng(args.seed), k_min, k_max)
        results[label] = [per_action(policy, data.observations[rows], features[goal_rows], actions, n_actions)
                          for policy, _ in loaded]

    command = "python benchmarks/action_accuracy.py " + shlex.join(sys.argv[1:])
    lines = ["# The low-level policy, action by action", "", f"Command: `{command}`", "",
             f"{len(val_episodes)} held-out play episodes ({len(rows)} steps) of `{run_dir}`. Per action: the fraction "
             "of its steps where the policy's most likely action is the data's (probability the policy gives the "
             "data's action in brackets), with hindsight goals 1 step ahead (the goal determines a crafting "
             "action) and 1..k_max steps ahead (as in training).", ""]
    policies = "; ".join(f"({i + 1}) `{path}`" for i, path in enumerate(paths))
    lines += [f"Policies: {policies}.", ""]
    header = "| action | steps | " + " | ".join(f"({i + 1}), horizon {label}" for label in horizons
                                                for i in range(len(paths))) + " |"
    lines += [header, "|---|---:|" + "---:|" * (len(horizons) * len(paths))]
    for a, name in enumerate(names):
        steps = results["1"][0]["actions"][a]["steps"]
        if not steps:
            continue
        cells = [f"{r['actions'][a]['accuracy']:.2f} ({r['actions'][a]['probability']:.2f})"
                 for label in horizons for r in results[label]]
        lines.append(f"| {name} | {steps} | " + " | ".join(cells) + " |")
    lines.append("| **all** | " + f"{len(rows)} | " + " | ".join(f"**{r['accuracy']:.3f}**" for label in horizons
                                                               for r in results[label]) + " |")
    out = Path(args.out)
    record = {"command": command, "policies": [str(p) for p in paths], "action_names": names,
              "held_out_episodes": int(len(val_episodes)), "steps": int(len(rows)),
              "horizons": {label: results[label] for label in horizons}}
    write_report(out, lines, record)
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except PTGMError as exc:
        sys.exit(f"action_accuracy.py: error: {exc}")
