"""Goal-space capacity test (the slides' table, Crafter analogue): one goal, different scenarios.

PTGM's slides show one discrete goal producing different successful behaviours in
different scenarios (in Minecraft: the same goal kills a sheep, a pig or a chicken,
whichever is near). Here, Crafter scenarios put one target next to the player — a tree,
water, a cow, a zombie, stone (with a wooden pickaxe) — and the frozen low-level policy
runs for a fixed horizon conditioned on ONE cluster goal, the same in every scenario. A
scenario succeeds when its achievement unlocks (collect_wood, collect_drink, eat_cow,
defeat_zombie, collect_stone). Rows: the goals the prior ranks highest over all scenario
start states, and random actions as the control.

    python benchmarks/goal_capacity.py                  # pieces from runs/crafter (see results/README.md)
    python benchmarks/goal_capacity.py --run-dir runs/demo --trials 10

Writes results/crafter/goal_capacity.{md,json}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from crafter import objects

from ptgm.domains import get_domain
from ptgm.domains.crafter.features import describe_goal
from ptgm.hrl.pretrained import Pretrained
from ptgm.utils import write_report

#: scenario -> (achievement that counts as success, starting inventory)
SCENARIOS = {
    "tree": ("collect_wood", {}),
    "water": ("collect_drink", {}),
    "cow": ("eat_cow", {}),
    "zombie": ("defeat_zombie", {}),
    "stone": ("collect_stone", {"wood_pickaxe": 1}),
}
WALKABLE = ("grass", "sand", "path")
OFFSETS = [(dx, dy) for dx in range(-3, 4) for dy in range(-3, 4) if 2 <= abs(dx) + abs(dy) <= 3]


def set_up(env, scenario: str, rng: np.random.Generator) -> bool:
    """Move the player next to (2–3 cells from) the scenario's target; False if this world has no spot."""
    world, player = env.unwrapped.world, env.unwrapped.player
    for item, amount in SCENARIOS[scenario][1].items():
        player.inventory[item] = amount
    material = {"tree": "tree", "water": "water", "stone": "stone"}.get(scenario)
    cx, cy = player.pos
    candidates = [(int(x), int(y)) for x in range(cx - 20, cx + 21) for y in range(cy - 20, cy + 21)]
    rng.shuffle(candidates)
    for pos in candidates:
        here, obj = world[pos]
        if here not in WALKABLE or obj is not None:
            continue
        if material is not None:
            if not any(world[(pos[0] + dx, pos[1] + dy)][0] == material for dx, dy in OFFSETS):
                continue
            world.move(player, np.array(pos))
            return True
        # A creature: put one on a free grass cell 2 cells away.
        for dx, dy in OFFSETS:
            spot = (pos[0] + dx, pos[1] + dy)
            if abs(dx) + abs(dy) == 2 and world[spot][0] == "grass" and world[spot][1] is None:
                world.move(player, np.array(pos))
                creature = objects.Cow(world, np.array(spot)) if scenario == "cow" else objects.Zombie(
                    world, np.array(spot), player)
                world.add(creature)
                return True
    return False


def run_trials(domain, policy, goal: np.ndarray | None, scenario: str, trials: int, horizon: int, seed: int) -> float:
    """Success rate of the low-level policy on ``goal`` (random actions when None) in a scenario."""
    achievement = SCENARIOS[scenario][0]
    env = domain.make_env(None, max_steps=horizon)
    rng = np.random.default_rng(seed)
    successes, done_trials, attempt = 0, 0, 0
    while done_trials < trials:
        attempt += 1
        env.reset(seed=seed * 10_000 + attempt)
        if not set_up(env, scenario, rng):
            continue
        done_trials += 1
        obs = env.unwrapped._observation()
        for _ in range(horizon):
            if goal is None:
                action = int(rng.integers(env.action_space.n))
            else:
                action = int(policy.act(obs, goal))
            obs, _, terminated, truncated, info = env.step(action)
            if achievement in info["achievements"]:
                successes += 1
                break
            if terminated or truncated:
                break
    return successes / trials


def start_states(domain, trials: int, seed: int) -> np.ndarray:
    """Observations at the start of every scenario (for ranking goals by the prior)."""
    env = domain.make_env(None)
    rng = np.random.default_rng(seed)
    states = []
    for i, scenario in enumerate(SCENARIOS):
        for t in range(trials):
            env.reset(seed=seed * 10_000 + 1000 * i + t)
            if set_up(env, scenario, rng):
                states.append(env.unwrapped._observation())
    return np.stack(states)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/crafter")
    parser.add_argument("--trials", type=int, default=50, help="trials per scenario and goal")
    parser.add_argument("--horizon", type=int, default=30, help="environment steps per trial")
    parser.add_argument("--goals", type=int, default=3, help="the prior's top goals evaluated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/crafter/goal_capacity.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    domain = get_domain("crafter")
    pieces = Pretrained.load(args.run_dir)
    policy, codebook, prior = pieces.policy, pieces.codebook, pieces.prior
    with torch.inference_mode():
        probs = torch.softmax(prior(torch.as_tensor(start_states(domain, 10, args.seed + 1))), -1).mean(0).numpy()
    ranked = np.argsort(-probs)[: args.goals]
    rows = []
    for g in ranked:
        rates = {s: run_trials(domain, policy, codebook.goal_features[g], s, args.trials, args.horizon, args.seed)
                 for s in SCENARIOS}
        rows.append({"goal": int(g), "prior_probability": float(probs[g]),
                     "description": describe_goal(codebook.goal_observations[g]), "success": rates})
        print(f"goal {g}: {rates}", flush=True)
    control = {s: run_trials(domain, policy, None, s, args.trials, args.horizon, args.seed) for s in SCENARIOS}
    rows.append({"goal": None, "description": "random actions (control)", "success": control})
    command = ("python benchmarks/goal_capacity.py " + " ".join(sys.argv[1:])).strip()
    lines = [
        "# Goal-space capacity: one goal, different scenarios (Crafter)", "",
        f"Command: `{command}`", "",
        f"Each scenario puts one target 2–3 cells from the player; the low-level policy runs {args.horizon} "
        f"steps conditioned on the same cluster goal in every scenario; success = the scenario's achievement "
        f"unlocks. {args.trials} trials per cell. Goals: the prior's highest-ranked over all scenario start "
        "states (mean prior probability in brackets).", "",
        "| goal | " + " | ".join(f"{s} ({SCENARIOS[s][0]})" for s in SCENARIOS) + " |",
        "|---|" + "---|" * len(SCENARIOS),
    ]
    for row in rows:
        name = ("random actions" if row["goal"] is None
                else f"goal {row['goal']} ({row['prior_probability']:.2f}): {row['description']}")
        lines.append(f"| {name} | " + " | ".join(f"{row['success'][s]:.2f}" for s in SCENARIOS) + " |")
    out = Path(args.out)
    write_report(out, lines, {"command": command, "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
