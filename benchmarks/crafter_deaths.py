"""How Crafter episodes end: the cause of each death, for the pre-trained pieces alone or trained agents.

    OMP_NUM_THREADS=1 python benchmarks/crafter_deaths.py --run-dir runs/crafter-long-delta --task collect_iron \\
        --agents runs/crafter-long-delta/rl/collect_iron/ptgm-seed0/agent.zip \\
        --out results/crafter-long-delta/deaths_collect_iron.md

A long-horizon task needs an agent that lives long enough for the chain. Each episode (on the final
evaluation's seeds of `ptgm train`) ends in success, at the time limit, or in death; a death is put
down to what took the last health point: a zombie next to the player, an arrow next to it (skeletons),
lava, or an empty food, drink or energy bar (Crafter drains health while one is empty). Also: the
mean episode length and the fraction of deaths at night (daylight below 0.3). It plays PTGM's
pre-trained pieces alone (the goal prior picks the goals, before any RL), and each agent given (an
``agent.zip`` of a finished `ptgm train` run) as trained, sampling its actions.
Writes a Markdown table (with this command) and a JSON file beside it.
"""

from __future__ import annotations

import argparse
import collections
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from ptgm.agent import Agent
from ptgm.domains import get_domain
from ptgm.settings import TrainConfig
from ptgm.utils import PTGMError, seed_everything

CAUSES = ("success", "time limit", "zombie", "arrow", "lava", "starved", "other")
NIGHT = 0.3


def cause_of_end(env, terminated: bool, truncated: bool, success: bool) -> str:
    """What ended the episode that just took its last step (see the module's docstring)."""
    if success:
        return "success"
    if truncated or not terminated:
        return "time limit"
    game = env.unwrapped._game
    player, world = game._player, game._world
    if world[player.pos][0] == "lava":
        return "lava"
    adjacent = [type(obj).__name__ for obj in world.objects
                if obj is not player and abs(obj.pos[0] - player.pos[0]) + abs(obj.pos[1] - player.pos[1]) <= 1]
    if "Zombie" in adjacent:
        return "zombie"
    if "Arrow" in adjacent:
        return "arrow"
    if min(player.inventory["food"], player.inventory["drink"], player.inventory["energy"]) == 0:
        return "starved"
    return "other"


def play(agent: Agent, task: str, episodes: int, first_seed: int) -> dict:
    # As `ptgm train`'s final evaluation: one environment seeded once, torch and numpy seeded alike.
    seed_everything(first_seed)
    env = get_domain("crafter").make_env(task, seed=first_seed)
    causes, lengths, night_deaths = collections.Counter(), [], 0
    for _ in range(episodes):
        obs, _ = env.reset()
        agent.reset()
        done, steps = False, 0
        while not done:
            action, _ = agent.predict(obs)
            obs, _, terminated, truncated, info = env.step(action)
            done, steps = terminated or truncated, steps + 1
        cause = cause_of_end(env, terminated, truncated, bool(info.get("is_success")))
        causes[cause] += 1
        lengths.append(steps)
        if cause not in ("success", "time limit"):
            night_deaths += env.unwrapped._game._world.daylight < NIGHT
    env.close()
    deaths = episodes - causes["success"] - causes["time limit"]
    return {"episodes": episodes, "mean_length": float(np.mean(lengths)),
            "causes": {name: causes[name] / episodes for name in CAUSES},
            "deaths_at_night": night_deaths / deaths if deaths else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/crafter-long-delta", help="run whose pre-trained pieces are played")
    parser.add_argument("--task", default="collect_iron")
    parser.add_argument("--agents", nargs="*", default=[], help="agent.zip files of finished `ptgm train` runs")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--out", default=None, help="Markdown table (default: results/crafter-long-delta/deaths_TASK.md)")
    args = parser.parse_args()
    out = Path(args.out or f"results/crafter-long-delta/deaths_{args.task}.md")
    config = TrainConfig(run_dir=args.run_dir, domain="crafter", task=args.task, method="ptgm", n_envs=1)
    first_seed = config.seed + 10_000  # the final evaluation's seed (ptgm.train.evaluate_model)
    players = {}
    agent = Agent("ptgm", config)
    agent.model.get_env().close()
    players[f"pieces of {args.run_dir} alone (goal prior → low-level policy)"] = agent
    for path in args.agents:
        players[str(path)] = Agent.load(path)
    results = {name: play(agent, args.task, args.episodes, first_seed) for name, agent in players.items()}

    command = "python benchmarks/crafter_deaths.py " + shlex.join(sys.argv[1:])
    lines = [f"# How `{args.task}` episodes end", "", f"Command: `{command}`", "",
             f"{args.episodes} episodes each, on the final evaluation's seeds, sampled actions. A death is put down "
             "to a zombie or an arrow next to the player, lava, or an empty food, drink or energy bar; fractions of "
             f"all episodes. Night: daylight below {NIGHT}.", "",
             "| who plays | mean length | " + " | ".join(CAUSES) + " | deaths at night |",
             "|---|---:|" + "---:|" * (len(CAUSES) + 1)]
    for name, result in results.items():
        night = "–" if result["deaths_at_night"] is None else f"{result['deaths_at_night']:.2f}"
        lines.append(f"| {name} | {result['mean_length']:.0f} | "
                     + " | ".join(f"{result['causes'][c]:.2f}" for c in CAUSES) + f" | {night} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"command": command, "task": args.task, "results": results},
                                                   indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except PTGMError as exc:
        sys.exit(f"crafter_deaths.py: error: {exc}")
