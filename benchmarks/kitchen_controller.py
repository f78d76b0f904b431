"""Success rate of the scripted Franka Kitchen controller, per subtask, from varied start poses.

    python benchmarks/kitchen_controller.py                    # 50 attempts per subtask
    python benchmarks/kitchen_controller.py --attempts 10 --subtasks microwave kettle

Each attempt resets ``FrankaKitchen-v1``, then moves the arm somewhere else first: half the
attempts run the controller on another random subtask (leaving the arm wherever that script
ends, and that object moved), the other half drive the arm to a random joint configuration
near the initial one. Then the controller performs the subtask under test, with action noise,
within a step budget. Success is the environment's own check: the subtask appears in
``info["step_task_completions"]`` (its joints within ``BONUS_THRESH`` of their goal) at some
step of the attempt. Writes a Markdown table (with this command) and a JSON file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from ptgm.domains.kitchen.controller import SUBTASKS, KitchenScriptedController
from ptgm.utils import write_report

#: Arm joints of the random start configurations: initial pose ± this (rad), reached in this many steps.
START_JITTER = 0.3
START_STEPS = 15


def make_env(budget: int) -> gym.Env:
    """FrankaKitchen-v1 that reports every subtask within the threshold at every step and never ends early."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    return gym.make("FrankaKitchen-v1", tasks_to_complete=list(SUBTASKS), terminate_on_tasks_completed=False,
                    remove_task_when_completed=False, max_episode_steps=10 * budget,
                    disable_env_checker=True)


def random_start(env: gym.Env, obs: dict, controller: KitchenScriptedController, subtask: str,
                 rng: np.random.Generator, budget: int) -> tuple[dict, int]:
    """Move the arm away from the initial pose; returns the last observation and the steps taken."""
    steps = 0
    if rng.random() < 0.5:
        other = str(rng.choice([s for s in SUBTASKS if s != subtask]))
        controller.start(other)
        while not controller.done and steps < budget:
            obs, *_ = env.step(controller(obs["observation"]))
            steps += 1
        return obs, steps
    data = env.unwrapped.data
    target = data.qpos[:7] + rng.uniform(-START_JITTER, START_JITTER, 7)
    for _ in range(START_STEPS):
        action = np.zeros(9, np.float32)
        action[:7] = np.clip(2.0 * (target - data.qpos[:7]), -1.0, 1.0)
        action[7:] = rng.uniform(-1.0, 1.0)
        obs, *_ = env.step(action)
        steps += 1
    return obs, steps


def attempt(env: gym.Env, controller: KitchenScriptedController, subtask: str, rng: np.random.Generator,
            seed: int, budget: int) -> tuple[bool, int | None, int]:
    """One attempt: (success, steps the subtask took to complete, env steps used in all)."""
    obs, _ = env.reset(seed=seed)
    obs, steps = random_start(env, obs, controller, subtask, rng, budget)
    controller.start(subtask)
    for t in range(1, budget + 1):
        obs, _, _, _, info = env.step(controller(obs["observation"]))
        if subtask in info["step_task_completions"]:
            return True, t, steps + t
        if controller.done:
            break
    return False, None, steps + t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=50, help="attempts per subtask")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=None, help="action noise std (default: the controller's)")
    parser.add_argument("--budget", type=int, default=250, help="env steps allowed per subtask")
    parser.add_argument("--subtasks", nargs="+", default=list(SUBTASKS), choices=SUBTASKS, metavar="SUBTASK")
    parser.add_argument("--out", default="results/kitchen/controller.md", help="Markdown table; JSON beside it")
    args = parser.parse_args()

    env = make_env(args.budget)
    rng = np.random.default_rng(args.seed)
    kwargs = {} if args.noise is None else {"action_noise": args.noise}
    controller = KitchenScriptedController(env, rng, **kwargs)
    rows, total_steps, start = [], 0, time.perf_counter()
    for i, subtask in enumerate(args.subtasks):
        successes, steps_to_success = 0, []
        for k in range(args.attempts):
            ok, took, used = attempt(env, controller, subtask, rng, args.seed * 100_000 + i * 1000 + k, args.budget)
            total_steps += used
            successes += ok
            if ok:
                steps_to_success.append(took)
        row = {"subtask": subtask, "attempts": args.attempts, "successes": successes,
               "success_rate": successes / args.attempts,
               "mean_steps": float(np.mean(steps_to_success)) if steps_to_success else None}
        rows.append(row)
        print(f"{subtask:14s} {successes:3d}/{args.attempts}  {row['success_rate']:6.1%}  "
              f"mean steps {row['mean_steps'] or float('nan'):6.1f}", flush=True)
    elapsed = time.perf_counter() - start
    steps_per_s = total_steps / elapsed
    print(f"{total_steps} env steps in {elapsed:.0f} s: {steps_per_s:.0f} steps/s (controller included)")

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        "# Scripted Kitchen controller: success per subtask",
        "",
        f"Command: `{command}`",
        "",
        (f"Action noise std {controller.action_noise}, budget {args.budget} env steps per subtask, "
         "start pose: after another subtask's script or a random arm configuration (half each). "
         "Success: the environment's own check (`info[\"step_task_completions\"]`). "
         "Mean steps: env steps to completion, over successful attempts."),
        "",
        "| subtask | attempts | successes | success rate | mean steps |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mean = f"{r['mean_steps']:.1f}" if r["mean_steps"] is not None else "–"
        lines.append(f"| {r['subtask']} | {r['attempts']} | {r['successes']} | {r['success_rate']:.0%} | {mean} |")
    lines += ["", (f"Controlled loop: {total_steps} env steps in {elapsed:.0f} s, {steps_per_s:.0f} env steps/s "
                   "(one process, controller included).")]
    out = Path(args.out)
    write_report(out, lines, {"command": command, "action_noise": controller.action_noise, "budget": args.budget,
                              "seed": args.seed, "rows": rows, "env_steps": total_steps, "seconds": elapsed,
                              "env_steps_per_s": steps_per_s})
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
