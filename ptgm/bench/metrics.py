"""Statistics of training curves: rolling score, area under the curve, env steps to a level, mean ± std."""

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
