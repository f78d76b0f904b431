"""Statistics of training curves (rolling score, area under the curve, env steps to a level, late-training loss,
mean ± std) and of a benchmark's runs together (rliable's interquartile mean and probability of improvement)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ptgm.train import read_episodes

logger = logging.getLogger(__name__)


def rolling_score(episodes: Path | list[dict], column: str = "success",
                  window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, mean of ``column`` over the last ``window`` training episodes), one point per episode.

    ``episodes``: a run's ``episodes.csv`` or its rows. Points start once ``window`` episodes
    have finished: a rate over fewer would let one lucky early episode count as reaching a threshold.
    """
    rows = episodes if isinstance(episodes, list) else read_episodes(episodes)
    if len(rows) < window:
        return np.zeros(0), np.zeros(0)
    steps = np.array([int(r["env_steps"]) for r in rows], float)
    values = np.array([float(r[column]) for r in rows])
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return steps[window - 1:], (cumulative[window:] - cumulative[:-window]) / window


def steps_to_threshold(steps: np.ndarray, score: np.ndarray, threshold: float) -> float | None:
    """First env step at which ``score`` reaches ``threshold`` (None if never)."""
    hit = np.flatnonzero(score >= threshold)
    return float(steps[hit[0]]) if len(hit) else None


def area_under_curve(steps: np.ndarray, score: np.ndarray, budget: int) -> float:
    """Mean score over the env-step budget (the curve held at its first value before it starts)."""
    if len(steps) == 0:
        return float("nan")
    x = np.concatenate([[0.0], steps, [max(budget, steps[-1])]])
    y = np.concatenate([[score[0]], score, [score[-1]]])
    return float(np.trapezoid(y, x) / x[-1])


def reference_comparison(results: list[dict], task: str, reference: str) -> tuple[float, list[dict]]:
    """Env steps each method's finished runs take to reach the reference method's final training score.

    The level is the mean over the reference's finished seeds of its rolling score at the end of
    training. Returns that level (nan without finished reference runs) and, per method, its
    per-seed steps (None: never reached) and, when every seed of both reached it, the ratio of mean
    steps to the reference's; no rows when the level is 0 (there is nothing to reach).
    """
    finished = [r for r in results if r["task"] == task and not r.get("in_progress") and len(r["curve"][1])]
    own = [r for r in finished if r["method"] == reference]
    if not own:
        return float("nan"), []
    level = float(np.mean([r["curve"][1][-1] for r in own]))
    if level <= 0:  # every run "reaches" a score of 0 at its first point: nothing to compare
        return level, []
    rows = []
    for method in dict.fromkeys(r["method"] for r in finished):
        steps = [steps_to_threshold(*r["curve"], level) for r in finished if r["method"] == method]
        rows.append({"method": method, "steps": steps})
    reference_steps = next(row["steps"] for row in rows if row["method"] == reference)
    for row in rows:
        reached = None not in row["steps"] and None not in reference_steps
        row["ratio"] = float(np.mean(row["steps"]) / max(np.mean(reference_steps), 1.0)) if reached else None
    return level, rows


def achievement_rates(rows: list[dict]) -> dict[str, float]:
    """Fraction of the training episodes ``rows`` that unlocked each achievement they name (their
    ``achievements`` column); the success rates the Crafter benchmark scores."""
    counts = Counter(name for row in rows for name in set(filter(None, row.get("achievements", "").split(";"))))
    return {name: count / len(rows) for name, count in sorted(counts.items())} if rows else {}


def mean_std(values: list[float], digits: int = 2) -> str:
    """Mean ± std of the values that are not NaN, as text ("—" when none is)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]  # runs too short to have a value
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}" if len(values) else "—"


#: Late-training stability: the best mean training score over a window of this many env steps starting at or
#: after :data:`LATE_START`, against the last window (the benchmark protocol's measure of a run that drifts late).
LATE_WINDOW, LATE_START = 100_000, 300_000


def late_drop(episodes: list[dict], column: str, start: int = LATE_START, window: int = LATE_WINDOW) -> float | None:
    """How much a run loses late in training: the best mean of ``column`` over the training episodes ending in
    ``window`` env steps that start at or after ``start`` (every tenth of a window), minus the mean over the last
    ``window`` env steps; None for a run shorter than ``start + window``."""
    if not episodes:
        return None
    steps = np.array([row["env_steps"] for row in episodes], float)
    values = np.array([float(row[column]) for row in episodes])
    end = steps[-1]
    if end < start + window:
        return None
    last = values[steps > end - window]
    means = [values[(steps > s) & (steps <= s + window)].mean()
             for s in np.arange(start, end - window, window / 10) if ((steps > s) & (steps <= s + window)).any()]
    return float(max([*means, last.mean()]) - last.mean())


def score_matrices(results: list[dict], tasks: list[str], key: str) -> dict[str, np.ndarray]:
    """Each method's ``(seeds, tasks)`` matrix of ``key`` over its finished runs, rliable's layout: the seeds
    finished on every task (a method with none is left out), NaN values left out with their seed."""
    matrices = {}
    for method in dict.fromkeys(r["method"] for r in results):
        runs = {(r["task"], r["seed"]): r[key] for r in results if r["method"] == method and not r.get("in_progress")
                and r.get(key) is not None and not np.isnan(r[key])}
        seeds = sorted({seed for _, seed in runs if all((task, seed) in runs for task in tasks)})
        if seeds:
            matrices[method] = np.array([[runs[(task, seed)] for task in tasks] for seed in seeds], float)
    return matrices


def aggregate_statistics(matrices: dict[str, np.ndarray], reference: str | None, reps: int = 2000,
                         seed: int = 0) -> dict[str, dict]:
    """rliable's interquartile mean of each method's scores (over seeds and tasks) and the probability that it
    improves on ``reference`` (P(X > Y) averaged over tasks), each with a 95% stratified-bootstrap interval
    (``reps`` resamples); by method: ``{"runs", "iqm", "iqm_ci", "improvement", "improvement_ci"}``, the last two
    absent for the reference itself or without it."""
    from rliable import metrics

    def iqm(matrix: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(matrix)])

    stats = {}
    for method, matrix in matrices.items():
        stats[method] = {"runs": int(matrix.shape[0]), "iqm": float(iqm(matrix)[0]),
                         "iqm_ci": _bootstrap_interval((matrix,), iqm, reps, seed)}
        if reference in matrices and method != reference:
            pair = (matrix, matrices[reference])
            stats[method]["improvement"] = float(metrics.probability_of_improvement(*pair))
            stats[method]["improvement_ci"] = _bootstrap_interval(pair, metrics.probability_of_improvement, reps, seed)
    return stats


def _bootstrap_interval(scores: tuple[np.ndarray, ...], statistic, reps: int, seed: int) -> list[float]:
    """rliable's 95% stratified-bootstrap interval of ``statistic(*scores)`` (runs resampled within each task).
    Where every matrix holds one run, each resample is that run: the interval is the point, given without the
    resampling (which would take seconds)."""
    if all(len(matrix) < 2 for matrix in scores):
        point = float(np.ravel(statistic(*scores))[0])
        return [point, point]
    import warnings

    from rliable import library as rly

    with warnings.catch_warnings():  # rliable hands arch a RandomState, which arch deprecates
        warnings.simplefilter("ignore", FutureWarning)
        _, intervals = rly.get_interval_estimates({"x": scores if len(scores) > 1 else scores[0]}, statistic,
                                                  reps=reps, random_state=np.random.RandomState(seed))
    return [float(v) for v in np.ravel(intervals["x"])]
