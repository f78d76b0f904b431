"""How Crafter episodes end: the cause of each death, for the pre-trained pieces alone or trained agents.

    OMP_NUM_THREADS=1 python benchmarks/crafter_deaths.py --run-dir runs/crafter-long-delta --task collect_iron \\
        --agents runs/crafter-long-delta/rl/collect_iron/ptgm-seed0/agent.zip \\
        --out results/crafter-long-delta/deaths_collect_iron.md

A long-horizon task needs an agent that lives long enough for the chain. Each episode (on the final
evaluation's seeds of `ptgm train`) ends in success, at the time limit, or in death; a death is put
down to what took the last health point: a zombie next to the player, an arrow next to it (skeletons),
lava, or an empty food, drink or energy bar (Crafter drains health while one is empty). Also: the
mean episode length, the fraction of deaths at night (daylight below 0.3), the fraction of deaths in
sleep, and how sheltered the player sleeps: the fraction of sleeping steps with at most one walkable cell
(grass, sand, path: where zombies walk) next to it, for the players and for the run's play data. It plays PTGM's
pre-trained pieces alone (the goal prior picks the goals, before any RL), and each agent given (an
``agent.zip`` of a finished `ptgm train` run) as trained, sampling its actions.
Writes a Markdown table (with this command) and a JSON file beside it.
"""

from __future__ import annotations

import argparse
import collections
import shlex
import sys
from pathlib import Path

import numpy as np

from ptgm.agent import Agent
from ptgm.data.generate import load_run_dataset
from ptgm.domains import get_domain
from ptgm.settings import TrainConfig
from ptgm.utils import PTGMError, seed_everything, write_report

CAUSES = ("success", "time limit", "zombie", "arrow", "lava", "starved", "other")
NIGHT = 0.3
#: Materials zombies walk on (crafter.objects.Zombie); a sleeper with at most one of them next to it is sheltered.
WALKABLE = ("grass", "sand", "path")


def open_neighbours(observations: np.ndarray) -> np.ndarray:
    """How many of the four cells next to the player are walkable, for each symbolic observation."""
    from ptgm.domains.crafter.env import MATERIALS, N_CHANNELS, VIEW_H, VIEW_SIZE, VIEW_W

    observations = np.atleast_2d(observations)
    view = observations[:, :VIEW_SIZE].reshape(len(observations), VIEW_H, VIEW_W, N_CHANNELS)
    walkable = view[..., [MATERIALS.index(name) for name in WALKABLE]].sum(-1) > 0
    row, col = VIEW_H // 2, VIEW_W // 2
    cells = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
    return np.sum([walkable[:, r, c] for r, c in cells], axis=0)


def sheltered_sleep(observations: np.ndarray) -> float | None:
    """Fraction of the sleeping observations with at most one walkable cell next to the player."""
    from ptgm.domains.crafter.env import SLEEP_OFFSET

    observations = np.atleast_2d(observations)
    asleep = observations[:, SLEEP_OFFSET] > 0
    return float(np.mean(open_neighbours(observations[asleep]) <= 1)) if asleep.any() else None


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
    causes, lengths, night_deaths, sleep_deaths, asleep = collections.Counter(), [], 0, 0, []
    for _ in range(episodes):
        obs, _ = env.reset()
        agent.reset()
        done, steps = False, 0
        while not done:
            action, _ = agent.predict(obs)
            obs, _, terminated, truncated, info = env.step(action)
            done, steps = terminated or truncated, steps + 1
            if env.unwrapped._game._player.sleeping:
                asleep.append(obs)
        cause = cause_of_end(env, terminated, truncated, bool(info.get("is_success")))
        causes[cause] += 1
        lengths.append(steps)
        if cause not in ("success", "time limit"):
            night_deaths += env.unwrapped._game._world.daylight < NIGHT
            sleep_deaths += env.unwrapped._game._player.sleeping
    env.close()
    deaths = episodes - causes["success"] - causes["time limit"]
    return {"episodes": episodes, "mean_length": float(np.mean(lengths)),
            "causes": {name: causes[name] / episodes for name in CAUSES},
            "deaths_at_night": night_deaths / deaths if deaths else None,
            "deaths_in_sleep": sleep_deaths / deaths if deaths else None,
            "sheltered_sleep": sheltered_sleep(np.asarray(asleep)) if asleep else None}


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


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
    data = load_run_dataset(args.run_dir).observations
    data_sheltered = sheltered_sleep(data)

    command = "python benchmarks/crafter_deaths.py " + shlex.join(sys.argv[1:])
    lines = [f"# How `{args.task}` episodes end", "", f"Command: `{command}`", "",
             f"{args.episodes} episodes each, on the final evaluation's seeds, sampled actions. A death is put down "
             "to a zombie or an arrow next to the player, lava, or an empty food, drink or energy bar; fractions of "
             f"all episodes. Night: daylight below {NIGHT}. Deaths at night and in sleep: fractions of the deaths. "
             "Sheltered sleep: fraction of the sleeping steps with at most one walkable cell (where zombies walk) "
             f"next to the player; in the run's play data (the scripted player) {_fraction(data_sheltered)}.", "",
             "| who plays | mean length | " + " | ".join(CAUSES) + " | deaths at night | deaths in sleep "
             "| sheltered sleep |",
             "|---|---:|" + "---:|" * (len(CAUSES) + 3)]
    for name, result in results.items():
        lines.append(f"| {name} | {result['mean_length']:.0f} | "
                     + " | ".join(f"{result['causes'][c]:.2f}" for c in CAUSES)
                     + f" | {_fraction(result['deaths_at_night'])} | {_fraction(result['deaths_in_sleep'])} "
                     f"| {_fraction(result['sheltered_sleep'])} |")
    write_report(out, lines, {"command": command, "task": args.task, "results": results,
                              "play_data_sheltered_sleep": data_sheltered})
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except PTGMError as exc:
        sys.exit(f"crafter_deaths.py: error: {exc}")
