"""Hindsight goal relabeling: the goal of a step is the state reached some steps later."""

from __future__ import annotations

import numpy as np


def hindsight_goal_rows(
    rows: np.ndarray, episode_end: np.ndarray, rng: np.random.Generator, k_min: int, k_max: int
) -> np.ndarray:
    """For each row ``t`` (which must carry an action), the row of its goal ``s_{t+h}``.

    ``h`` is drawn uniformly from ``[k_min, k_max]`` per row and clipped at the end of
    the episode, so the goal is always a state of the same episode that lies after ``t``.
    """
    if not 1 <= k_min <= k_max:
        raise ValueError(f"need 1 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    rows = np.asarray(rows)
    horizons = rng.integers(k_min, k_max + 1, size=rows.shape)
    return np.minimum(rows + horizons, episode_end[rows])
