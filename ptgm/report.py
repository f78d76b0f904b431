"""`ptgm report`: which goals a trained high-level policy picks, as pictures.

For each task with a trained hierarchical run, the policy plays fresh episodes; every
high-level step's goal is recorded. The report shows, per task, the goals it picks most
(their rendered frames with their share of all picks) and the sequence of goals of one
episode, so one can read off the plan the policy found (e.g. "walk to a tree, face it,
collect") from the goal codebook's pictures. It also times the episodes' task reward: the env
step by which the return first reached 1, 2, ... (Kitchen: the n-th subtask), which tells a
slow goal from a wrong one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ptgm.domains import domain_of  # noqa: E402
from ptgm.methods import get_method
from ptgm.progress import progress  # noqa: E402
from ptgm.settings import ReportConfig
from ptgm.train import (  # noqa: E402
    TrainConfig,
    check_run_pieces,
    run_directory,
    saved_run_config,
)
from ptgm.utils import PTGMError, atomic_write_bytes  # noqa: E402

logger = logging.getLogger(__name__)


def trained_tasks(config: ReportConfig) -> list[str]:
    """Tasks with a finished run of the configured method and seed."""
    rl = Path(config.run_dir) / "rl"
    name = f"{config.method}-seed{config.seed}"
    return sorted(p.name for p in rl.iterdir() if (p / name / "DONE.json").exists()) if rl.exists() else []


def goal_usage(config: ReportConfig, task: str) -> dict:
    """Play ``config.episodes`` episodes; the goal of every high-level step, per episode."""
    train_config = saved_run_config(TrainConfig(run_dir=config.run_dir, domain=config.domain, dataset=config.dataset,
                                                goal_keys=config.goal_keys, task=task,
                                                method=config.method, seed=config.seed))
    path = run_directory(train_config) / "model.zip"
    if not path.exists():
        raise PTGMError(f"No trained policy at {path}. Train it with `ptgm train --task {task} --method "
                        f"{config.method} --seed {config.seed} --run-dir {config.run_dir}`.")
    method = get_method(config.method)
    pieces = method.load_pieces(train_config, check_dataset=False)
    check_run_pieces(train_config, pieces)
    model = method.load_model(train_config, path, pieces)
    env = method.make_env(dataclasses.replace(train_config, seed=config.seed + 20_000), pieces)
    episodes = []
    for _ in progress(range(config.episodes), desc=f"report {task}", leave=False):
        obs, _ = env.reset()
        goals, rewards, env_steps, done, info = [], [], [], False, {}
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            obs, reward, terminated, truncated, info = env.step(action)
            goals.append(int(info["goal"]))
            rewards.append(float(reward))
            env_steps.append((env_steps[-1] if env_steps else 0) + int(info.get("env_steps", 1)))
            done = terminated or truncated
        ret = float(sum(rewards))
        episodes.append({"goals": goals, "rewards": rewards, "env_steps": env_steps, "return": ret,
                         "success": bool(info.get("is_success", ret >= 1.0))})
    env.close()
    return {"task": task, "episodes": episodes, "codebook": pieces.codebook}


def reward_pace(episode: dict) -> list[int]:
    """Env step (at the end of its high-level step) by which the episode's return first reached 1, 2, ..."""
    pace, total = [], 0.0
    for reward, step in zip(episode["rewards"], episode["env_steps"]):
        total += reward
        while total >= len(pace) + 1 - 1e-6:  # one high-level step may earn several units
            pace.append(step)
    return pace


def _runs(goals: list[int]) -> list[tuple[int, int]]:
    """Consecutive repeats collapsed: [(goal, times in a row), ...]."""
    runs: list[tuple[int, int]] = []
    for g in goals:
        if runs and runs[-1][0] == g:
            runs[-1] = (g, runs[-1][1] + 1)
        else:
            runs.append((g, 1))
    return runs


def plot_goal_usage(domain, usage: dict, path: Path, top: int = 8, max_sequence: int = 12) -> None:
    """Top row: the most-picked goals with their share; bottom row: one episode's goals in order."""
    codebook, episodes = usage["codebook"], usage["episodes"]
    counts = Counter(g for e in episodes for g in e["goals"])
    total = sum(counts.values())
    shown = counts.most_common(top)
    # The episode shown: the first successful one, else the first.
    example = next((e for e in episodes if e["success"]), episodes[0])
    sequence = _runs(example["goals"])[:max_sequence]
    # Task reward earned during each run of one goal.
    starts = np.cumsum([0] + [times for _, times in sequence])
    earned = [sum(example["rewards"][a:b]) for a, b in zip(starts[:-1], starts[1:])]
    columns = max(len(shown), len(sequence), 1)
    fig, axes = plt.subplots(2, columns, figsize=(columns * 1.7, 4.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (goal, n) in zip(axes[0], shown):
        ax.imshow(domain.render_observation(codebook.goal_observations[goal]))
        ax.set_title(f"goal {goal}\n{n / total:.0%} of picks", fontsize=7)
    for i, (ax, (goal, times), reward) in enumerate(zip(axes[1], sequence, earned)):
        ax.imshow(domain.render_observation(codebook.goal_observations[goal]))
        ax.set_title(f"{i + 1}. goal {goal}" + (f" ×{times}" if times > 1 else "")
                     + (f"\nreward +{reward:g}" if reward else ""), fontsize=7)
    successes = np.mean([e["success"] for e in episodes])
    fig.suptitle(f"{domain.name} {usage['task']}: goals the high-level policy picks ({len(episodes)} episodes, "
                 f"success {successes:.2f}); top: most picked; bottom: one "
                 f"{'successful ' if example['success'] else ''}episode in order (×n: n high-level steps in a row)",
                 fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(config: ReportConfig) -> dict:
    domain = domain_of(config)
    tasks = list(config.tasks) or trained_tasks(config)
    if not tasks:
        raise PTGMError(f"No finished {config.method} run with seed {config.seed} in {config.run_dir}/rl. Train one "
                        f"with `ptgm train --method {config.method} --run-dir {config.run_dir}`, or pass --seed.")
    out = Path(config.out)
    describe = getattr(domain, "describe_goal", None)
    lines = [f"# Goals picked by the {config.method} high-level policy (seed {config.seed})", "",
             f"Command: `ptgm report --run-dir {config.run_dir} --domain {config.domain} --method {config.method} "
             f"--seed {config.seed} --episodes {config.episodes} --out {config.out}`", "",
             "| task | episodes | success | mean return | high-level steps / episode | distinct goals | "
             "most picked goals (share) |", "|---|---|---|---|---|---|---|"]
    summaries, paces = {}, {}
    for task in tasks:
        usage = goal_usage(config, task)
        picture = out / f"{task}.png"
        plot_goal_usage(domain, usage, picture, config.top)
        episodes = usage["episodes"]
        counts = Counter(g for e in episodes for g in e["goals"])
        total = sum(counts.values())
        top = counts.most_common(3)
        named = ", ".join(f"{g} ({n / total:.0%}" + (f", {describe(usage['codebook'].goal_observations[g])}"
                                                      if describe else "") + ")" for g, n in top)
        pace = [reward_pace(e) for e in episodes]
        paces[task] = [[p[n] for p in pace if len(p) > n] for n in range(max(map(len, pace), default=0))]
        summaries[task] = {"episodes": len(episodes), "success_rate": float(np.mean([e["success"] for e in episodes])),
                           "goal_counts": {int(g): int(n) for g, n in counts.items()}, "picture": str(picture),
                           "reward_pace": [float(np.mean(steps)) for steps in paces[task]]}
        lines.append(f"| {task} | {len(episodes)} | {summaries[task]['success_rate']:.2f} | "
                     f"{np.mean([e['return'] for e in episodes]):.2f} | "
                     f"{np.mean([len(e['goals']) for e in episodes]):.1f} | {len(counts)} | {named} |")
        logger.info(f"[report] {task}: {picture}")
    if any(paces.values()):
        lines += ["", "Pace: the env step by which an episode's return first reached n (the end of that high-level "
                  "step), mean over the episodes that reached it (in brackets, how many; range after).", "",
                  "| task | n | env step | range |", "|---|---|---|---|"]
        lines += [f"| {task} | {n + 1} | {np.mean(steps):.0f} ({len(steps)}) | {min(steps)}–{max(steps)} |"
                  for task in tasks for n, steps in enumerate(paces[task])]
    lines += ["", "Pictures: " + ", ".join(f"`{t}.png`" for t in tasks)]
    atomic_write_bytes(out / "README.md", ("\n".join(lines) + "\n").encode())
    logger.info("\n".join(lines))
    return summaries
