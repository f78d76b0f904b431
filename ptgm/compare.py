"""`ptgm compare`: the number-of-clusters and interval-k ablations, across benchmark results folders.

Each value of a swept setting is its own `ptgm bench` (own run directory, own results
folder, e.g. ``results/crafter-n16`` for 16 clusters). This command reads the folders'
``summary.json`` records and sets them side by side: one table row per (folder, task, method)
with the settings that differ between folders, and for each swept setting a plot of the
final evaluation and the training AUC against its value.

A sweep over one setting compares folders that agree on every other compared setting with the
reference folder (the first one), so a cluster-count sweep and an interval sweep made from the
same reference do not mix.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ptgm.bench import BenchConfig, mean_std
from ptgm.cli import config_arguments
from ptgm.domains import get_domain
from ptgm.plots import plot_sweep
from ptgm.settings import CompareConfig
from ptgm.utils import PTGMError, atomic_write_bytes, recorded_settings

logger = logging.getLogger(__name__)

#: Benchmark settings a sweep varies; folders are compared on these.
#: (``gamma`` 0 stands for each method's own discount.)
SWEPT_SETTINGS = ("n_clusters", "k", "gamma", "anneal_lr", "ent_coef", "kl_coef", "normalize_advantage", "env_steps",
                  "transitions", "pretrain_steps", "prior_steps")


def read_record(folder: str | Path) -> dict:
    """A results folder's ``summary.json``: its benchmark's settings and its runs."""
    path = Path(folder) / "summary.json"
    if not path.exists():
        raise PTGMError(f"{folder} has no summary.json; write it with `ptgm bench ... --out {folder}` "
                        "(add --summarize-only to start no run).")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PTGMError(f"{path} is not valid JSON ({exc}); rewrite it with `ptgm bench ... --summarize-only "
                        f"--out {folder}`.") from exc
    if "config" not in record or "runs" not in record:
        raise PTGMError(f"{path} is not a `ptgm bench` record (no 'config' and 'runs'); rewrite it with "
                        f"`ptgm bench ... --summarize-only --out {folder}`.")
    return record


def _setting(record: dict, name: str):
    """A benchmark setting of a results record (records older than the setting have its default)."""
    return recorded_settings(record["config"], BenchConfig).get(name)


def _run_setting(record: dict, runs: list[dict], name: str):
    """A benchmark setting as its runs trained with it: an unset one (e.g. each method's own discount) is read
    from the runs' recorded training settings, so a sweep's points have numbers to stand at."""
    value = _setting(record, name)
    if value is None:
        value = next((r["config"][name] for r in runs if name in r.get("config", {})), None)
    return value


def sweep_rows(records: dict[str, dict]) -> tuple[list[str], list[dict]]:
    """The settings that differ between the records, and one row per (folder, task, method) of finished runs."""
    settings = [s for s in SWEPT_SETTINGS if len({json.dumps(_setting(r, s)) for r in records.values()}) > 1]
    rows = []
    for folder, record in records.items():
        finished = [r for r in record["runs"] if not r.get("in_progress")]
        for task in dict.fromkeys(r["task"] for r in finished):
            for method in dict.fromkeys(r["method"] for r in finished if r["task"] == task):
                group = [r for r in finished if r["task"] == task and r["method"] == method]
                rows.append({
                    "folder": folder, "task": task, "method": method, "seeds": len(group),
                    **{s: _run_setting(record, group, s) for s in SWEPT_SETTINGS},
                    "eval_success": [r["eval_success_rate"] for r in group],
                    "eval_return": [r["eval_mean_return"] for r in group],
                    "auc": [r["auc"] for r in group],
                })
    return settings, rows


def compare(config: CompareConfig) -> dict:
    records = {folder: read_record(folder) for folder in config.results}
    domains = {r["config"].get("domain") for r in records.values()}
    if len(domains) > 1:
        raise PTGMError(f"The results folders are of different domains ({', '.join(sorted(map(str, domains)))}); "
                        "compare one domain's folders at a time.")
    settings, rows = sweep_rows(records)
    if not rows:
        raise PTGMError(f"No finished run in {', '.join(config.results)}; rerun their `ptgm bench` commands.")
    reference = records[config.results[0]]["config"]
    # The domain's own score (Kitchen: subtasks completed, i.e. return; Crafter: success).
    score = "eval_return" if get_domain(reference["domain"]).score == "return" else "eval_success"
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    pictures = []
    # Settings as each (task, method) of the reference trained with them (a method's own discount, say).
    reference_rows = {(r["task"], r["method"]): r for r in rows if r["folder"] == config.results[0]}
    for setting in settings:
        # The folders that differ from the reference in this setting alone (and the reference itself).
        same_otherwise = [row for row in rows if (row["task"], row["method"]) in reference_rows and all(
            row[s] == reference_rows[row["task"], row["method"]][s] for s in settings if s != setting)]
        if len({row[setting] for row in same_otherwise}) < 2:
            continue
        picture = out / f"sweep_{setting}.png"
        plot_sweep(same_otherwise, setting, score, picture)
        pictures.append(picture.name)
    name = {"eval_success": "eval success", "eval_return": "eval return"}[score]
    lines = [f"# {', '.join(sorted(map(str, domains)))}: the benchmarks side by side", "",
             f"Command: `{' '.join(['ptgm compare', *config_arguments(config)])}`", "",
             "One row per results folder, task and method: mean ± std over finished seeds of the final evaluation "
             "and of the training AUC (mean training score over the budget). The first folder is the reference.", "",
             "| " + " | ".join(["folder", *settings, "task", "method", "seeds", name, "training AUC"]) + " |",
             "|" + "---|" * (len(settings) + 6)]
    for row in rows:
        cells = [row["folder"], *(str(row[s]) for s in settings), row["task"], row["method"], str(row["seeds"]),
                 mean_std(row[score]), mean_std(row["auc"])]
        lines.append("| " + " | ".join(cells) + " |")
    if pictures:
        lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in pictures)]
    table = "\n".join(lines) + "\n"
    atomic_write_bytes(out / "comparison.md", table.encode())
    logger.info(table + f"\nIn {out}/")
    return {"settings": settings, "rows": rows, "pictures": pictures}

