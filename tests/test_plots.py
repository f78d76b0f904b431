"""The learning-curve pictures: one figure per task, and one figure with a panel per task."""

import matplotlib.image as mpimg
import numpy as np

from ptgm.plots import plot_learning_curve_panels, plot_learning_curves


def _seed_curves(n_seeds: int, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    # Seeds end at different env steps, as runs of one benchmark do; they are put on one grid.
    return [(np.arange(1, length + 1 + 10 * s) * 100.0, rng.uniform(0, 1, length + 10 * s)) for s in range(n_seeds)]


def test_learning_curves_draw_every_method_with_seeds_of_different_lengths(tmp_path):
    path = tmp_path / "deep" / "curves.png"
    plot_learning_curves({"ptgm": _seed_curves(3, 50), "ppo": _seed_curves(1, 40), "empty": []}, path, title="t")
    height, width = mpimg.imread(path).shape[:2]
    assert (width, height) == (910, 585)  # 7 x 4.5 inches at 130 dpi


def test_learning_curve_panels_lay_out_one_panel_per_task(tmp_path):
    by_task = {f"task{i}": {"ptgm": _seed_curves(2, 30)} for i in range(4)}
    plot_learning_curve_panels(by_task, tmp_path / "four.png", title="t", columns=3)
    plot_learning_curve_panels({"task0": by_task["task0"]}, tmp_path / "one.png", title="t", columns=3)
    four, one = mpimg.imread(tmp_path / "four.png"), mpimg.imread(tmp_path / "one.png")
    assert four.shape[:2] == (round(2 * 3.8 * 130), round(3 * 5.2 * 130))  # 4 tasks: 2 rows of 3 panels
    assert one.shape[:2] == (round(3.8 * 130), round(5.2 * 130))  # a single task gets a single panel
