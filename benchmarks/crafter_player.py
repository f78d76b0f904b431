"""How well the scripted Crafter player plays: survival, achievements, Crafter score, speed.

Plays episodes the way `ptgm generate` records them (reward-free play, the play step limit,
one player per episode drawn from the same generator), on one core:

    OMP_NUM_THREADS=1 python benchmarks/crafter_player.py                 # 200 episodes
    OMP_NUM_THREADS=1 python benchmarks/crafter_player.py --episodes 50 --seed 1
    OMP_NUM_THREADS=1 python benchmarks/crafter_player.py --episodes 50 --max-steps 10000 \
        --out results/crafter/player-10k.md

Prints and writes results/crafter/player.md (``--out``): mean episode length, the fraction of
episodes unlocking each of Crafter's 22 achievements, what ended the episodes that died,
transitions per second, the step of the episode at which each achievement is first unlocked
(median and 90th percentile over the episodes that unlock it), and the Crafter score S = exp(mean_i ln(1 + s_i)) - 1 of the success
rates s_i in percent (as the Crafter repository's analysis computes it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from crafter import objects

from ptgm.data.generate import coverage_table
from ptgm.domains import get_domain
from ptgm.settings import GenerateConfig

DEFAULT_STEPS = GenerateConfig.__dataclass_fields__["max_episode_steps"].default


def crafter_score(success_percent: list[float]) -> float:
    """Crafter's score: the geometric mean of 1 + success rate (in percent), minus 1."""
    return float(np.exp(np.mean(np.log1p(np.asarray(success_percent)))) - 1)


def nearby_kinds(env) -> set[type]:
    """Kinds of creatures within two steps of the player (a zombie's last blow comes as it dies)."""
    player = env.player
    _, near = env.world.nearby(player.pos, 2)
    return {type(obj) for obj in near if player.distance(obj) <= 2}


def damage_cause(env, before: set[type]) -> str:
    """What most likely took the player's health this step (``before``: :func:`nearby_kinds` then)."""
    player, world = env.player, env.world
    if world[player.pos][0] == "lava":
        return "lava"
    if player._recover == 0:  # health just fell from an unmet need
        empty = [name for name in ("food", "drink", "energy") if player.inventory[name] == 0]
        if empty:
            return "no " + "/".join(empty)
    if objects.Zombie in before | nearby_kinds(env):
        return "zombie"
    return "arrow"


def play(episodes: int, max_steps: int, seed: int) -> dict:
    domain = get_domain("crafter")
    env = domain.make_env(None, max_steps=max_steps)
    rng = np.random.default_rng(seed)
    lengths, unlocked, deaths, first = [], [], Counter(), defaultdict(list)
    steps = 0
    start = time.perf_counter()
    for _ in range(episodes):
        obs, info = env.reset(seed=int(rng.integers(2**31 - 1)))
        player = domain.scripted_player(env, rng)
        infos, done, cause, seen = [info], False, None, set()
        while not done:
            health, before = env.unwrapped.player.health, nearby_kinds(env.unwrapped)
            obs, _, terminated, truncated, info = env.step(player(obs))
            if env.unwrapped.player.health < health:
                cause = damage_cause(env.unwrapped, before)
            infos.append(info)
            achievements = env.unwrapped.player.achievements  # Crafter's own bookkeeping
            for name in {name for name, count in achievements.items() if count} - seen:
                first[name].append(len(infos) - 1)  # the step that unlocked it
                seen.add(name)
            done = terminated or truncated
        if terminated:
            deaths[cause or "unknown"] += 1
        lengths.append(len(infos) - 1)
        steps += len(infos) - 1
        unlocked.append({"achievements": sorted(domain.episode_achievements(infos))})
    seconds = time.perf_counter() - start
    coverage = coverage_table(unlocked, domain.achievement_names())
    return {
        "episodes": episodes, "max_steps": max_steps, "mean_length": float(np.mean(lengths)),
        "coverage": coverage, "deaths": dict(deaths), "transitions_per_second": steps / seconds,
        "first_unlock": {name: (float(np.median(first[name])), float(np.percentile(first[name], 90)))
                         for name in coverage if first[name]},
        "score": crafter_score([100 * coverage[name] for name in coverage]),
    }


def markdown(result: dict, command: str) -> str:
    died = sum(result["deaths"].values())
    lines = [
        "# Scripted Crafter player",
        "",
        f"Produced by `{command}` (one core).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| episodes | {result['episodes']} |",
        f"| step limit | {result['max_steps']} |",
        f"| mean episode length | {result['mean_length']:.0f} ({result['mean_length'] / result['max_steps']:.0%} of the limit) |",
        f"| episodes that died | {died} ({died / result['episodes']:.0%}) |",
        f"| transitions/s (one core, resets included) | {result['transitions_per_second']:.0f} |",
        f"| Crafter score S | {result['score']:.1f} |",
        "",
        "First unlock: the step of the episode at which the achievement is first unlocked, over the",
        "episodes that unlock it.",
        "",
        "| achievement | fraction of episodes | first unlock, median | first unlock, 90th percentile |",
        "|---|---|---|---|",
    ]
    for name, frac in result["coverage"].items():
        median, p90 = result["first_unlock"].get(name, (np.nan, np.nan))
        lines.append(f"| {name} | {frac:.2f} | {median:.0f} | {p90:.0f} |" if frac else f"| {name} | 0.00 | - | - |")
    if died:
        lines += ["", "| cause of death (last damage) | episodes |", "|---|---|"]
        lines += [f"| {cause} | {n} |" for cause, n in sorted(result["deaths"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=DEFAULT_STEPS, help="episode step limit (play's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/crafter/player.md")
    args = parser.parse_args(argv)
    result = play(args.episodes, args.max_steps, args.seed)
    command = "python benchmarks/crafter_player.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(result, command.strip())
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
