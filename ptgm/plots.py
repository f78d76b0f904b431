"""Pictures: the goal codebook, a 2-D map of goals, learning curves, sweeps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_codebook_grid(domain, codebook, path: Path, columns: int = 8) -> None:
    """Every cluster goal's rendered frame in one grid, titled with its index and cluster size."""
    n = codebook.n_goals
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.8), squeeze=False)
    describe = getattr(domain, "describe_goal", None)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(domain.render_observation(codebook.goal_observations[i]))
        title = f"goal {i} (n={codebook.cluster_sizes[i]})"
        if describe is not None:
            title += "\n" + describe(codebook.goal_observations[i]).replace("; ", "\n", 1)
        ax.set_title(title, fontsize=5)
    fig.suptitle(f"{domain.name}: {n} cluster goals (dataset state nearest each K-means centre)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_goal_projection(features: np.ndarray, codebook, path: Path, seed: int = 0, max_points: int = 20_000) -> None:
    """Dataset goals in 2-D (PCA), coloured by cluster, with the cluster goals marked."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(features), size=min(max_points, len(features)), replace=False)
    pca = PCA(n_components=2, random_state=seed).fit(features[pick])
    points = pca.transform(features[pick])
    goals = pca.transform(codebook.goal_features)
    labels = codebook.assign(features[pick])
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab20", s=3, alpha=0.5, linewidths=0)
    ax.scatter(goals[:, 0], goals[:, 1], c=np.arange(len(goals)), cmap="tab20", s=60, marker="*",
               edgecolors="black", linewidths=0.6)
    for i, (x, y) in enumerate(goals):
        ax.annotate(str(i), (x, y), fontsize=6)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"Goal features (PCA), coloured by K-means cluster; stars are the {len(goals)} cluster goals",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _draw_learning_curves(ax, curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], title: str, ylabel: str) -> None:
    """Mean ± std over seeds of each method's curve on ``ax``; seeds are interpolated onto a common grid."""
    top = 1.0
    for method, runs in curves.items():
        runs = [(x, y) for x, y in runs if len(x)]
        if not runs:
            continue
        grid = np.linspace(0, max(x.max() for x, _ in runs), 200)
        values = np.stack([np.interp(grid, x, y) for x, y in runs])
        mean, std = values.mean(0), values.std(0)
        top = max(top, float(values.max()))
        ax.plot(grid, mean, label=f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02 * top, 1.02 * top)  # rates stay on [0, 1]; scores (e.g. subtasks done) get their range
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_learning_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], path: Path, title: str,
                         ylabel: str = "success rate") -> None:
    """Mean ± std over seeds of each method's curve (x: environment steps).

    ``curves[method]`` is a list of (env_steps, value) arrays, one per seed; they are
    interpolated onto a common grid before averaging.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _draw_learning_curves(ax, curves, title, ylabel)
    fig.tight_layout()
    _save(fig, path)


def plot_learning_curve_panels(curves_by_task: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]], path: Path,
                               title: str, ylabel: str = "success rate", columns: int = 3) -> None:
    """One panel per task (``curves_by_task[task]`` as for :func:`plot_learning_curves`), in one figure."""
    columns = max(1, min(columns, len(curves_by_task)))
    rows = -(-len(curves_by_task) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    for ax, (task, curves) in zip(axes.flat, curves_by_task.items()):
        _draw_learning_curves(ax, curves, task, ylabel)
    for ax in axes.flat[len(curves_by_task):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def plot_sweep(rows: list[dict], setting: str, score: str, path: Path) -> None:
    """Final evaluation and training AUC against a swept setting (e.g. the number of clusters), mean ± std over
    seeds, one line per (task, method); ``rows`` as `ptgm.compare.sweep_rows` makes them."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], score, score.replace("_", " ")), (axes[1], "auc", "training AUC")):
        for task, method in dict.fromkeys((r["task"], r["method"]) for r in rows):
            line = sorted((r for r in rows if r["task"] == task and r["method"] == method), key=lambda r: r[setting])
            values = [np.asarray(r[key], float) for r in line]
            ax.errorbar([r[setting] for r in line], [np.nanmean(v) for v in values],
                        yerr=[np.nanstd(v) for v in values], marker="o", capsize=3, label=f"{task} {method}")
        ax.set_xlabel(setting.replace("_", " "))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    values = sorted({r[setting] for r in rows})
    for ax in axes:
        if setting == "n_clusters":  # the paper's sweep doubles the count
            ax.set_xscale("log", base=2)
        ax.minorticks_off()
        ax.set_xticks(values, [str(v) for v in values])
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{setting.replace('_', ' ')} sweep: mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_achievement_rates(rates: dict[str, dict[str, float]], path: Path, names: list[str], title: str) -> None:
    """Grouped horizontal bars: for each achievement, the fraction of episodes unlocking it, one bar per method."""
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) * max(1, len(rates)) ** 0.5 + 1.5))
    height = 0.8 / max(1, len(rates))
    y = np.arange(len(names))
    for i, (method, by_name) in enumerate(rates.items()):
        ax.barh(y + i * height, [100 * by_name.get(n, 0.0) for n in names], height, label=method)
    ax.set_yticks(y + height * (len(rates) - 1) / 2, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("episodes unlocking it (%)")
    ax.set_xlim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
