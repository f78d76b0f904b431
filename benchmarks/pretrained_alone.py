"""What each method's policy does before any RL: pre-training alone, evaluated on the task.

    python benchmarks/pretrained_alone.py                                   # Kitchen, runs/kitchen (50 goals)
    python benchmarks/pretrained_alone.py --run-dir runs/kitchen-n200 --methods ptgm ptgm-no-prior \\
        --out results/kitchen-n200/pretrained_alone.md                      # 200 goals (no SPiRL skills there)
    python benchmarks/pretrained_alone.py --domain crafter --run-dir runs/crafter --task collect_stone

Every learner of `ptgm train` starts from what pre-training gave it, and this script evaluates
exactly that starting policy (`ptgm.agent.Agent`, no environment step of RL):

- ``ptgm``: the high-level actor is a copy of the goal prior, so it picks goals as the prior
  does, and the frozen low-level policy reaches them;
- ``ptgm-no-prior``: a freshly initialised actor over the same cluster goals (nearly uniform);
- ``spirl`` / ``spirl-cl``: SPiRL's skill prior p(z|s) alone (the actor starts as its copy): each skill is
  sampled from the prior (or is its most likely one) and decoded into 10 actions, open-loop at once
  (``spirl``) or each from the state reached (``spirl-cl``, the closed-loop decoder);
- ``bc-ppo``: the flat policy behaviour-cloned on the play data;
- ``sac`` / ``ppo``: a freshly initialised flat policy (the random control).

So it separates what the pre-trained pieces hold from what RL makes of them: if a method's RL
ends below its own starting point, the RL lost what pre-training gave. Each policy is evaluated
on the same episodes as the benchmark's final evaluation (`ptgm train`'s evaluation seeds),
sampling its actions and with its most likely action. Writes a Markdown table (with this
command) and a JSON file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ptgm.agent import Agent
from ptgm.baselines.spirl import SkillPriorPolicy
from ptgm.bench import mean_std
from ptgm.domains import get_domain
from ptgm.methods import get_method
from ptgm.settings import TrainConfig
from ptgm.train import evaluate_model
from ptgm.utils import PTGMError, atomic_write_bytes, atomic_write_json, seed_everything

#: The methods compared by default, per domain: each's pre-trained start and the random control.
DEFAULT_METHODS = {"kitchen": ["ptgm", "ptgm-no-prior", "spirl", "spirl-cl", "sac"],
                   "crafter": ["ptgm", "ptgm-no-prior", "bc-ppo", "ppo"]}

#: What acts in each method's starting policy, for the table.
STARTS = {"ptgm": "goal prior → low-level policy", "ptgm-no-prior": "untrained actor over the goals → low-level policy",
          "ptgm-sac": "goal prior → low-level policy", "ptgm-no-cluster": "untrained continuous-goal actor",
          "spirl": "skill prior → open-loop skill decoder", "spirl-cl": "skill prior → closed-loop skill decoder",
          "bc-ppo": "behaviour-cloned flat policy",
          "sac": "untrained flat policy", "ppo": "untrained flat policy"}


def evaluate_start(config: TrainConfig, episodes: int) -> dict[bool, dict]:
    """The evaluations of ``config.method``'s policy as built, before any RL, sampling its actions (False) and
    with its most likely action (True); the policy is built once for both (bc-ppo's cloning is not cheap)."""
    seed_everything(config.seed)
    method = get_method(config.method)
    if method.pieces == "skills":  # SPiRL: the skill prior itself (any prior type), no SAC actor built
        skills = method.load_pieces(config)
        policy = SkillPriorPolicy(skills)
        return {deterministic: evaluate_model(config, policy, skills, episodes=episodes, deterministic=deterministic)
                for deterministic in (False, True)}
    agent = Agent(config.method, config)
    agent.model.get_env().close()
    return {deterministic: evaluate_model(config, agent.model, agent.pieces, episodes=episodes,
                                          deterministic=deterministic)
            for deterministic in (False, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="kitchen")
    parser.add_argument("--run-dir", default="", help="run directory with the pre-trained pieces (default: runs/DOMAIN)")
    parser.add_argument("--task", default="", help="task (default: the domain's)")
    parser.add_argument("--methods", nargs="+", default=None, help="methods of `ptgm train` (default: per domain)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds: their initialisation and their evaluation episodes")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per seed and mode")
    parser.add_argument("--out", default="", help="Markdown table; JSON beside it (default: "
                                                  "results/DOMAIN/pretrained_alone.md)")
    args = parser.parse_args()
    domain = get_domain(args.domain)
    run_dir = args.run_dir or f"runs/{args.domain}"
    methods = args.methods or DEFAULT_METHODS.get(args.domain, ["ptgm", "ptgm-no-prior"])
    out = Path(args.out or f"results/{args.domain}/pretrained_alone.md")
    rows, start = [], time.perf_counter()
    for method in methods:
        results = {False: [], True: []}
        for seed in args.seeds:
            config = TrainConfig(run_dir=run_dir, domain=args.domain, task=args.task or None, method=method, seed=seed)
            try:
                for deterministic, result in evaluate_start(config, args.episodes).items():
                    results[deterministic].append(result)
                    print(f"{method:14s} seed {seed} {'most likely' if deterministic else 'sampled':11s} "
                          f"score {result['mean_return']:.2f}  success {result['success_rate']:.2f}", flush=True)
            except PTGMError as error:
                raise SystemExit(f"{method}: {error}") from error
        rows += [{"method": method, "deterministic": deterministic, "task": config.task, "runs": runs}
                 for deterministic, runs in results.items()]
    elapsed = time.perf_counter() - start
    by_return = domain.task_score(rows[0]["task"]) == "return"  # Kitchen's subtasks, the Crafter benchmark's reward
    score = ("subtasks completed" if domain.score == "return" else "return") if by_return else "success rate"
    value = "mean_return" if by_return else "success_rate"
    subtasks = sorted({name for row in rows for r in row["runs"] for name in r.get("subtask_rates", {})})
    lines = [f"# {args.domain} `{rows[0]['task']}`: each method's policy before any RL", "",
             f"Command: `python {shlex.join(sys.argv)}`", "",
             f"Pre-trained pieces from `{run_dir}`. {args.episodes} episodes per seed (seeds "
             f"{', '.join(map(str, args.seeds))}), on the final evaluation's episodes of `ptgm train`; the policy "
             f"samples its actions, or takes its most likely one. Score: {score} (mean ± std over seeds when several). "
             f"{elapsed:.0f} s in all.", "",
             f"| method | what acts | actions | {score} | best episode |" + "".join(f" {n} |" for n in subtasks),
             "|---|---|---|---|---|" + "---|" * len(subtasks)]
    for row in rows:
        runs = row["runs"]
        scores = [r[value] for r in runs]
        lines.append(f"| {row['method']} | {STARTS.get(row['method'], '')} | "
                     f"{'most likely' if row['deterministic'] else 'sampled'} | "
                     f"{mean_std(scores) if len(scores) > 1 else f'{scores[0]:.2f}'} | "
                     f"{max(r['best_return'] for r in runs):g} |" + "".join(
                         f" {np.mean([r.get('subtask_rates', {}).get(n, 0.0) for r in runs]):.2f} |" for n in subtasks))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    atomic_write_json(out.with_suffix(".json"), {"run_dir": run_dir, "domain": args.domain, "seeds": args.seeds,
                                                 "episodes": args.episodes, "rows": rows, "seconds": elapsed})
    print("\n".join(lines) + f"\nwrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
