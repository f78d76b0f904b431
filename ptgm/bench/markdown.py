"""What a benchmark writes for people: the summary table (Markdown), the curves table and the plots."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ptgm.bench.grid import uses_pretraining
from ptgm.bench.metrics import (
    LATE_START,
    LATE_WINDOW,
    achievement_rates,
    aggregate_statistics,
    mean_std,
    reference_comparison,
    score_matrices,
)
from ptgm.bench.record import RECORD_SCHEMA
from ptgm.domains import domain_of
from ptgm.plots import plot_achievement_rates, plot_learning_curve_panels, plot_learning_curves
from ptgm.settings import BenchConfig
from ptgm.train import EPISODE_FIELDS
from ptgm.utils import (
    atomic_write_bytes,
    atomic_write_json,
    invoked_command,
)

logger = logging.getLogger(__name__)


def write_results(config: BenchConfig, score: str, pretrained: dict | None, results: list[dict],
                  carried: list[dict] = ()) -> None:
    """Curves, summary, plots and pictures of ``results`` into the results folder; ``carried``: recorded runs
    outside this benchmark's selection, kept in ``curves.csv`` and ``summary.json`` but left out of the tables."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(config.run_dir)
    # Every training episode of every run, in one table.
    with open(out / "curves.csv.tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, ["task", "method", "seed", *EPISODE_FIELDS])
        writer.writeheader()
        for r in [*results, *carried]:
            for row in r["episode_rows"]:
                writer.writerow({"task": r["task"], "method": r["method"], "seed": r["seed"], **row})
    (out / "curves.csv.tmp").replace(out / "curves.csv")
    label = "success rate" if score == "success" else "return"
    curves_by_task = {}
    for task in config.tasks:
        curves = {m: [r["curve"] for r in results if r["task"] == task and r["method"] == m] for m in config.methods}
        curves_by_task[task] = {m: c for m, c in curves.items() if c}
        plot_learning_curves(curves_by_task[task], out / f"learning_curves_{task}.png",
                             title=f"{config.domain} {task}: training {label} (last {config.window} episodes), "
                                   "mean ± std over seeds", ylabel=label)
    names = achievement_names(config)
    for task in config.tasks:
        per_method = seed_achievement_rates(config, results, task)
        if per_method:
            rates = {method: mean_rates(per_seed, names) for method, per_seed in per_method.items()}
            plot_achievement_rates(rates, out / f"achievements_{task}.png", names,
                                   title=f"{config.domain} {task}: fraction of training episodes unlocking each "
                                         "achievement, mean over seeds")
    if len(config.tasks) > 1:
        plot_learning_curve_panels(curves_by_task, out / "learning_curves.png", ylabel=label,
                                   title=f"{config.domain}: training {label} (last {config.window} episodes), "
                                         "mean ± std over seeds, one panel per task")
    pieces = pieces_folder(config, pretrained)
    if pieces is not None:  # once per set of pieces, however many benchmarks use them
        pieces.mkdir(parents=True, exist_ok=True)
        for source in (run_dir / "codebook" / "goals.png", run_dir / "codebook" / "projection.png",
                       run_dir / "data" / "coverage.md"):
            if source.exists() and not (pieces / source.name).exists():
                shutil.copy(source, pieces / f"{source.name}.tmp")
                (pieces / f"{source.name}.tmp").replace(pieces / source.name)
    aggregate = aggregate_statistics_of(config, results, score)
    atomic_write_json(out / "summary.json", {
        "schema": RECORD_SCHEMA,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "runs": [{k: v for k, v in r.items() if k not in ("curve", "episode_rows")} for r in [*results, *carried]],
        "aggregate": aggregate,
        # What the summary's header reports, so that a fresh clone can write it again without pre-training.
        "pretrained": None if pretrained is None else {
            key: pretrained.get(key) for key in ("data", "lowlevel", "prior", "fingerprint")}})
    table = summary_markdown(config, score, pretrained, results, aggregate)
    atomic_write_bytes(out / "summary.md", table.encode())
    logger.info("\n" + table + f"\nResults in {out}/")


def pretraining_markdown(pretrained: dict | None) -> list[str]:
    """The summary's lines on the pre-trained pieces (dataset, low-level policy, goal prior)."""
    if pretrained is None:
        return ["- pre-trained pieces: their numbers are not in this results folder's record, which was made "
                "before it kept them"]
    data, low, prior = pretrained["data"], pretrained["lowlevel"], pretrained["prior"]
    reach = low["goal_reaching"]
    accuracy = ("held-out action accuracy", low["val_action_accuracy"]) if "val_action_accuracy" in low else (
        "held-out action MSE", low["val_action_mse"])
    return [
        f"- dataset: {data['episodes']} episodes, {data['transitions']} transitions "
        + (f"from {data['dataset']}" if "coverage" not in data and data.get("dataset") else "of scripted play"),
        f"- low-level policy: {accuracy[0]} {accuracy[1]:.3f}; goal-reaching test {reach['success_rate']:.2f} with "
        f"the true goal vs {reach['control_success_rate']:.2f} with a shuffled goal ({reach['trials']} trials, "
        f"horizon {reach['horizon']})",
        f"- goal prior: held-out accuracy {prior['val_accuracy']:.3f} (top-5 {prior['val_top5_accuracy']:.3f}) over "
        f"{prior['n_goals']} goals"]


def tuned_markdown(config: BenchConfig) -> list[str]:
    """What --tuned gave each method (nothing without it)."""
    if not config.tuned:
        return []
    from ptgm.bench.tune import load_tuning

    record = load_tuning(config.tuned)
    chosen = "; ".join(f"{m}: " + (", ".join(f"{k}={v}" for k, v in record["methods"][m]["chosen"].items())
                                    or "its defaults") for m in config.methods)
    return [f"Settings from `{config.tuned}` (`{record['command']}`: {record['rule']} on tuning seeds "
            f"{', '.join(map(str, record['seeds']))} at {record['env_steps']} env steps): {chosen}.", ""]


def summary_markdown(config: BenchConfig, score: str, pretrained: dict | None, results: list[dict],
                     aggregate: dict[str, dict] | None = None) -> str:
    """The summary's Markdown; ``aggregate``: :func:`aggregate_statistics_of` the results, if already computed."""
    name = "success" if score == "success" else "return"
    lines = [
        f"# {config.domain}: {', '.join(config.methods)}", "",
        f"Command: `{invoked_command('bench')}`", "",
        *tuned_markdown(config),
        *(pretraining_markdown(pretrained) if uses_pretraining(config) else
          ["- pre-trained pieces: none; every method here learns from scratch"]), "",
        f"Final evaluation: {config.eval_episodes} episodes per run on evaluation seeds, with sampled actions and "
        "(\"most likely\") with each policy's most likely action; runs from before the second one show —. Training "
        f"{name} is the mean over the last {config.window} training episodes; \"first\" is that over each run's "
        f"first {config.window} episodes; AUC is the mean training {name} over the env-step budget; the threshold "
        f"is {config.threshold:g}. Mean ± std over seeds. Runs \"in progress\" count with their training curve "
        "so far and have no final evaluation yet.", "",
        f"| task | method | seeds | env steps (per seed) | eval success | eval return | eval success, most likely | "
        f"eval return, most likely | first {config.window} episodes | "
        f"training AUC | env steps to {name} ≥ {config.threshold:g} (per seed) | env steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in config.tasks:
        for method in config.methods:
            group = [r for r in results if r["task"] == task and r["method"] == method]
            if not group:
                continue
            reach_steps = ", ".join("never" if r["steps_to_threshold"] is None else f"{r['steps_to_threshold']:.0f}"
                                    for r in group)
            running = sum(bool(r.get("in_progress")) for r in group)
            speeds = [r["env_steps_per_second"] for r in group if not np.isnan(r["env_steps_per_second"])]
            lines.append(
                f"| {task} | {method} | {len(group)}{f' ({running} in progress)' if running else ''} | "
                f"{', '.join(str(r['env_steps']) for r in group)} | "
                f"{mean_std([r['eval_success_rate'] for r in group])} | "
                f"{mean_std([r['eval_mean_return'] for r in group])} | "
                f"{mean_std([r.get('eval_most_likely_success_rate', np.nan) for r in group])} | "
                f"{mean_std([r.get('eval_most_likely_mean_return', np.nan) for r in group])} | "
                f"{mean_std([r['first_window'] for r in group])} | {mean_std([r['auc'] for r in group])} | "
                f"{reach_steps} | {f'{np.mean(speeds):.0f}' if speeds else '—'} |")
    if config.reference:
        lines += reference_markdown(config, results, name)
    lines += aggregate_markdown(config, aggregate or aggregate_statistics_of(config, results, score), score)
    lines += stability_markdown(config, results, name)
    lines += subtask_markdown(config, results)
    lines += achievement_markdown(config, results)
    lines += ["", "Learning curves: " + ("`learning_curves.png` (one panel per task), " if len(config.tasks) > 1 else "")
              + ", ".join(f"`learning_curves_{t}.png`" for t in config.tasks)]
    pieces = pieces_folder(config, pretrained)
    if pieces is not None:
        link = Path(os.path.relpath(pieces, config.out)).as_posix()
        lines += ["", f"Goal codebook: [`goals.png`]({link}/goals.png) (the dataset state nearest each K-means "
                  f"centre), [`projection.png`]({link}/projection.png) (2-D projection of the goal features coloured "
                  f"by cluster); dataset coverage: [`coverage.md`]({link}/coverage.md) (in `{pieces}`, shared by "
                  "every benchmark of these pieces)"]
    return "\n".join(lines) + "\n"


def pieces_folder(config: BenchConfig, pretrained: dict | None) -> Path | None:
    """Where the pictures of the benchmark's pre-trained pieces are kept: ``results/pieces/FINGERPRINT`` beside
    the results folder (None when the benchmark uses no pieces or their fingerprint is unknown)."""
    fingerprint = (pretrained or {}).get("fingerprint")
    if not uses_pretraining(config) or not fingerprint:
        return None
    return Path(config.out).parent / "pieces" / fingerprint


def reference_markdown(config: BenchConfig, results: list[dict], name: str) -> list[str]:
    """The table of env steps each method takes to reach the reference method's final training score."""
    lines = ["", f"## Env steps to reach {config.reference}'s final training {name}", "",
              f"The level is {config.reference}'s training {name} over its last {config.window} episodes, mean over its "
              "finished seeds; each finished run's env steps to first reach it (rolling over the same window), and "
              f"the mean over seeds as a fraction of {config.reference}'s own (when every seed reached it).", "",
              f"| task | level | method | env steps to reach it (per seed) | fraction of {config.reference}'s |",
              "|---|---|---|---|---|"]
    for task in config.tasks:
        level, rows = reference_comparison(results, task, config.reference)
        if np.isnan(level):
            lines.append(f"| {task} | — | — | {config.reference} has no finished run yet | — |")
        elif level <= 0:
            lines.append(f"| {task} | {level:.2f} | — | {config.reference} ends at 0: nothing to reach | — |")
        for row in rows:
            steps = ", ".join("never" if x is None else f"{x:.0f}" for x in row["steps"])
            ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
            lines.append(f"| {task} | {level:.2f} | {row['method']} | {steps} | {ratio} |")
    return lines


def aggregate_statistics_of(config: BenchConfig, results: list[dict], score: str) -> dict[str, dict]:
    """rliable's statistics of the finished runs over the benchmark's tasks, of the final evaluation (sampled
    actions) and of the training AUC: ``{"final evaluation": {method: ...}, "training AUC": {...}}``."""
    final = "eval_success_rate" if score == "success" else "eval_mean_return"
    chosen = [r for r in results if r["method"] in config.methods]
    return {what: aggregate_statistics(score_matrices(chosen, list(config.tasks), key), config.reference or None)
            for what, key in (("final evaluation", final), ("training AUC", "auc"))}


def aggregate_markdown(config: BenchConfig, stats: dict[str, dict], score: str) -> list[str]:
    """The table of rliable's interquartile mean and probability of improvement over the reference method."""
    if not any(stats.values()):
        return []
    name = "success" if score == "success" else "return"
    reference = config.reference or None

    def interval(entry: dict, key: str) -> str:
        if key not in entry:
            return "—"
        low, high = entry[f"{key}_ci"]
        return f"{entry[key]:.2f} [{low:.2f}, {high:.2f}]"

    against = (f", and the probability that a run of the method scores above a run of {reference} (P(X > Y), "
               "averaged over tasks)") if reference else ""
    lines = ["", "## Aggregate statistics (rliable)", "",
             f"Over the seeds finished on every task ({', '.join(config.tasks)}): the interquartile mean (IQM) of the "
             f"final evaluation's {name} (sampled actions) and of the training AUC{against}; 95% "
             "stratified-bootstrap intervals in brackets (none with one seed: every resample is it).", "",
             "| method | seeds | IQM, final evaluation | IQM, training AUC |"
             + (f" P(> {reference}), final evaluation | P(> {reference}), training AUC |" if reference else ""),
             "|---|---|---|---|" + ("---|---|" if reference else "")]
    final, auc = stats["final evaluation"], stats["training AUC"]
    for method in config.methods:
        if method in final or method in auc:
            entry_final, entry_auc = final.get(method, {}), auc.get(method, {})
            runs = entry_final.get("runs", entry_auc.get("runs"))
            lines.append(f"| {method} | {runs} | {interval(entry_final, 'iqm')} | {interval(entry_auc, 'iqm')} |"
                         + (f" {interval(entry_final, 'improvement')} | {interval(entry_auc, 'improvement')} |"
                            if reference else ""))
    return lines


def stability_markdown(config: BenchConfig, results: list[dict], name: str) -> list[str]:
    """The table of what each finished run loses late in training (runs long enough to measure it)."""
    long = [r for r in results if r.get("late_drop") is not None]
    if not long:
        return []
    lines = ["", "## Late-training stability", "",
             f"Each finished run's best mean training {name} over {LATE_WINDOW} env steps starting at or after "
             f"{LATE_START}, minus its mean over the last {LATE_WINDOW} env steps (0: it ends at its best).", "",
             "| task | method | loss (per seed) | largest |", "|---|---|---|---|"]
    for task in config.tasks:
        for method in config.methods:
            drops = [r["late_drop"] for r in long if r["task"] == task and r["method"] == method]
            if drops:
                lines.append(f"| {task} | {method} | {', '.join(f'{d:.2f}' for d in drops)} | {max(drops):.2f} |")
    return lines


def achievement_names(config: BenchConfig) -> list[str]:
    return list(domain_of(config).achievement_names())


def seed_achievement_rates(config: BenchConfig, results: list[dict], task: str) -> dict[str, list[dict[str, float]]]:
    """method → per seed, achievement → fraction of that run's training episodes that unlocked it; only for a
    domain with a benchmark score of its own (Crafter) and runs whose episodes record achievements."""
    if domain_of(config).benchmark_score({}) is None:
        return {}
    table = {}
    for method in config.methods:
        group = [r for r in results if r["task"] == task and r["method"] == method and r["episode_rows"]]
        if group and any(row["achievements"] for r in group for row in r["episode_rows"]):
            table[method] = [achievement_rates(r["episode_rows"]) for r in group]
    return table


def mean_rates(per_seed: list[dict[str, float]], names: list[str]) -> dict[str, float]:
    """Each achievement's rate, mean over seeds (a seed that never unlocked it counts 0)."""
    return {name: float(np.mean([rates.get(name, 0.0) for rates in per_seed])) for name in names}


def achievement_markdown(config: BenchConfig, results: list[dict]) -> list[str]:
    """Per task: the fraction of training episodes unlocking each achievement, and the domain's benchmark score of
    those fractions (Crafter: the Crafter score), per method, mean ± std over seeds."""
    domain, names, lines = domain_of(config), achievement_names(config), []
    for task in config.tasks:
        per_method = seed_achievement_rates(config, results, task)
        if not per_method:
            continue
        methods = list(per_method)
        means = {method: mean_rates(per_seed, names) for method, per_seed in per_method.items()}
        lines += ["", f"## {task}: achievements over all training episodes", "",
                  "Fraction of training episodes (all of each run's budget) that unlocked each achievement, mean "
                  "over seeds, and the score of those fractions as the Crafter benchmark computes it (S = "
                  "exp(mean ln(1 + s_i)) − 1, s_i in percent; mean ± std over seeds). Our agents see the symbolic "
                  "observation, not the 64×64 pixels of the published scoreboard.", "",
                  "| achievement | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{means[m][name]:.3f}" for m in methods) + " |")
        scores = [mean_std([domain.benchmark_score(rates) for rates in per_method[m]], 1) for m in methods]
        lines += ["| **score (%)** | " + " | ".join(scores) + " |", "",
                  f"Chart: `achievements_{task}.png`"]
    return lines


def subtask_markdown(config: BenchConfig, results: list[dict]) -> list[str]:
    """Per (task, method): the fraction of final-evaluation episodes completing each subtask (Kitchen), mean over seeds.

    Empty when no finished run reported a subtask (Crafter, or runs from before the report existed). A run whose
    evaluation completed none counts as zeros: leaving it out would average the failed seeds away.
    """
    if not any(r.get("eval_subtask_rates") for r in results):
        return []
    rated = [r for r in results if "eval_subtask_rates" in r]  # evaluated runs (not those in progress)
    names = sorted({name for r in rated for name in r["eval_subtask_rates"]})
    lines = ["", "## Subtasks completed in the final evaluation", "",
             "Fraction of evaluation episodes in which each subtask was completed, mean over the evaluated seeds "
             "(a seed that completed none counts as 0).", "", "| task | method | seeds | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for task in config.tasks:
        for method in config.methods:
            group = [r["eval_subtask_rates"] for r in rated if r["task"] == task and r["method"] == method]
            if group:
                cells = [f"{np.mean([g.get(name, 0.0) for g in group]):.2f}" for name in names]
                lines.append(f"| {task} | {method} | {len(group)} | " + " | ".join(cells) + " |")
    return lines
