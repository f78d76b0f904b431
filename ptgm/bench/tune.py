"""`ptgm tune`: the benchmark protocol's equal tuning budget.

Every method gets the same number of configurations: its own grid (each setting of
:attr:`~ptgm.methods.base.Method.tuning_alternatives` at the method's default or its alternative, every
combination) or the one ``--grid`` gives every method. Each configuration trains on the tuning seeds
(``--first-seed`` on, apart from the benchmark's), on the benchmark's pre-trained pieces, in
``RUN_DIR/rl/TASK/METHOD-tuneI-seedS``; the rule fixed before the runs (``--rule``: training AUC, or the final
training score) picks each method's configuration. The results folder gets:

- ``tuning.json``: every tried configuration with its runs' scores, and each method's chosen settings, which
  ``ptgm bench --tuned OUT/tuning.json`` trains with;
- ``tuning.md``: the same as a table, with its command;
- ``tuning_curves.png``: one panel per method, the training curve of each configuration (mean ± std over seeds
  and tasks).

Rerunning the same command reuses the finished runs and resumes the others from their checkpoints. The
results folder is also the tuning's durable record, as a benchmark's is: ``tuning.json`` keeps each finished run's
training settings and pieces, ``tuning_episodes.csv`` its training episodes, so a run whose run directory is gone
(a fresh clone) counts as finished while its settings and pieces are those it would be trained with now.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import typing
from pathlib import Path

import numpy as np

from ptgm.bench.grid import _pretrain_stages, _train_config, run_trainings, uses_pieces, uses_pretraining
from ptgm.bench.metrics import area_under_curve, mean_std, rolling_score
from ptgm.bench.record import changed_settings
from ptgm.domains import domain_of
from ptgm.methods import get_method
from ptgm.settings import BenchConfig, TrainConfig, TuneConfig
from ptgm.train import EPISODE_FIELDS, episode_row, pieces_fingerprint, read_episodes, run_directory
from ptgm.utils import PTGMError, atomic_write_bytes, atomic_write_json, invoked_command, stage_done

logger = logging.getLogger(__name__)

#: Version of the layout of ``tuning.json`` (2: each finished run's settings and pieces, its episodes beside).
TUNING_SCHEMA = 2
#: The columns of ``tuning_episodes.csv``: which run, then its training episode.
TUNING_EPISODE_FIELDS = ["task", "method", "configuration", "seed", *EPISODE_FIELDS]
#: `ptgm train` settings a tuning grid cannot vary: what the run is (task, method, seed, pieces, budget), not how
#: it learns.
NOT_TUNABLE = frozenset({"run_dir", "domain", "dataset", "goal_keys", "seed", "force", "resume", "task",
                         "start_inventory", "method", "env_steps", "eval_episodes", "checkpoint_every", "device",
                         "run_name"})


def alternatives_grid(alternatives: tuple[tuple[str, object], ...]) -> list[dict]:
    """Every combination of each setting at its default (absent) or its alternative; the defaults come first."""
    grid: list[dict] = [{}]
    for name, value in alternatives:
        grid += [{**settings, name: value} for settings in grid]
    return grid


def parse_grid(entries: tuple[str, ...]) -> list[dict]:
    """``FIELD=V1,V2`` entries as every combination of their values, typed as `ptgm train`'s settings."""
    hints = typing.get_type_hints(TrainConfig)
    tunable = sorted(f.name for f in dataclasses.fields(TrainConfig) if f.name not in NOT_TUNABLE)
    axes, names = [], []
    for entry in entries:
        name, sep, values = entry.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise PTGMError(f"--grid {entry!r} is not FIELD=V1,V2 (e.g. learning_rate=3e-4,1e-4).")
        if name not in tunable:
            raise PTGMError(f"--grid: {name!r} is not a `ptgm train` setting a tuning can vary; choose from "
                            f"{', '.join(tunable)}.")
        if name in names:
            raise PTGMError(f"--grid names {name} twice; give all its values in one FIELD=V1,V2.")
        kind = _scalar_type(hints[name], name)
        names.append(name)
        axes.append([(name, _parse_value(kind, value.strip(), name)) for value in values.split(",")])
    return [dict(combination) for combination in itertools.product(*axes)]


def _scalar_type(hint, name: str) -> type:
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] if typing.get_args(hint) else [hint]
    if len(kinds) != 1 or kinds[0] not in (bool, int, float, str):
        raise PTGMError(f"--grid cannot vary {name}, a list setting; tune it with one `ptgm tune` per value.")
    return kinds[0]


def _parse_value(kind: type, text: str, name: str):
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise PTGMError(f"--grid {name}: {text!r} is not true or false.")
        return text.lower() in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError:
        raise PTGMError(f"--grid {name}: {text!r} is not a {kind.__name__}.") from None


def method_grids(config: TuneConfig) -> dict[str, list[dict]]:
    """Each method's configurations (settings that differ from the benchmark's), checked: the same number for
    every method, and each a valid `ptgm train` configuration."""
    if config.grid:
        shared = parse_grid(config.grid)
        grids = {method: shared for method in config.methods}
    else:
        grids = {method: alternatives_grid(get_method(method).tuning_alternatives) for method in config.methods}
    sizes = {method: len(grid) for method, grid in grids.items()}
    if len(set(sizes.values())) > 1:
        raise PTGMError("The methods' tuning grids differ in size (" + ", ".join(f"{m} {n}" for m, n in sizes.items())
                        + "): an equal tuning budget needs the same number; give every method one with --grid.")
    for method, grid in grids.items():
        for settings in grid:
            _train_config(config, config.tasks[0], method, config.first_seed, **settings)  # a bad value fails here
    return grids


def _run_name(method: str, index: int, seed: int) -> str:
    return f"{method}-tune{index}-seed{seed}"


def tune(config: TuneConfig) -> dict:
    """`ptgm tune`: train every method's configurations on the tuning seeds and choose one per method by the rule;
    writes OUT/tuning.json, OUT/tuning.md and OUT/tuning_curves.png and returns the record."""
    grids = method_grids(config)
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    runs = {}
    for seed in seeds:
        for task in config.tasks:
            for method in config.methods:
                for index, settings in enumerate(grids[method]):
                    train_config = _train_config(config, task, method, seed,
                                                 run_name=_run_name(method, index, seed), **settings)
                    log = Path(config.run_dir) / "logs" / f"tune-{task}-{method}-{index}-seed{seed}.log"
                    runs[(task, method, index, seed)] = (train_config, log)
    failed = []
    if config.summarize_only:  # (trains nothing, so there may be no pieces to check the recorded runs against)
        recorded = recorded_tuning_runs(config, grids, runs)
    else:
        if uses_pretraining(config):
            _pretrain_stages(config)
        recorded = recorded_tuning_runs(config, grids, runs, check_pieces=True)
    if recorded:
        logger.info(f"[tune] {len(recorded)} finished run(s) recorded in {config.out}/tuning.json count as done")
    if not config.summarize_only:
        logger.info(f"[tune] {len(runs)} runs: {len(config.methods)} methods × {len(next(iter(grids.values())))} "
                    f"configurations × {len(config.tasks)} task(s) × {len(seeds)} tuning seed(s), "
                    f"{config.env_steps} env steps each")
        failed = run_trainings(config, {key: run for key, run in runs.items() if key not in recorded},
                               on_finished=lambda _: write_tuning(config, grids, seeds, runs, recorded))
    record = write_tuning(config, grids, seeds, runs, recorded)
    for method, entry in record["methods"].items():
        if entry["chosen"] is not None:
            logger.info(f"[tune] {method}: chose configuration {entry['chosen_index']} "
                        f"({_settings_text(entry['chosen'])})")
    logger.info(f"[tune] wrote {config.out}/tuning.md and {config.out}/tuning.json")
    if failed:
        raise PTGMError(f"{len(failed)} of {len(runs)} tuning runs failed; fix the cause shown in their logs and rerun "
                        "the same command: finished runs are reused.")
    return record


def write_tuning(config: TuneConfig, grids: dict[str, list[dict]], seeds: list[int], runs: dict,
                 recorded: dict[tuple, dict]) -> dict:
    """The results folder's record of the runs finished so far (``recorded`` and those of the run directory):
    ``tuning.json``, ``tuning_episodes.csv``, ``tuning.md`` and ``tuning_curves.png``; returns the record."""
    finished = {**recorded, **{key: run for key in runs if (run := _finished_run(runs[key][0])) is not None}}
    record = _tuning_record(config, grids, seeds, runs, finished)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_tuning_episodes(out / "tuning_episodes.csv", finished)
    atomic_write_json(out / "tuning.json", record)
    atomic_write_bytes(out / "tuning.md", tuning_markdown(config, record).encode())
    _plot_tuning_curves(config, grids, finished, out / "tuning_curves.png")
    return record


def _finished_run(train_config: TrainConfig) -> dict | None:
    """A run directory's finished run: its training settings, the fingerprint of its pieces and its training
    episodes (None while unfinished)."""
    directory = run_directory(train_config)
    done = stage_done(directory)
    if done is None:
        return None
    return {"config": done["config"], "pieces": (done.get("inputs") or {}).get("pieces"),
            "episodes": read_episodes(directory / "episodes.csv")}


def _run_state(train_config: TrainConfig) -> str:
    directory = run_directory(train_config)
    if (directory / "DONE.json").exists():
        return "finished"
    return "in progress" if (directory / "checkpoint.json").exists() else "not started"


def recorded_tuning_runs(config: TuneConfig, grids: dict[str, list[dict]], runs: dict,
                         check_pieces: bool = False) -> dict[tuple, dict]:
    """Finished runs of this tuning recorded in the results folder whose run directory has not started them, by run
    key (as :func:`_finished_run` gives them). A run counts while its recorded training settings are those it would
    be trained with now and, with ``check_pieces``, it learned on the pieces the run directory holds now."""
    out = Path(config.out)
    try:
        record = json.loads((out / "tuning.json").read_text())
        with open(out / "tuning_episodes.csv") as f:
            rows = list(csv.DictReader(f))
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(record, dict) or record.get("schema") != TUNING_SCHEMA or record.get("domain") != config.domain:
        return {}
    episodes: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["task"], row["method"], int(row["configuration"]), int(row["seed"]))
        episodes.setdefault(key, []).append(episode_row(row))
    current_pieces: dict[str, str | None] = {}
    recorded = {}
    for method, entry in record.get("methods", {}).items():
        for index, configuration in enumerate(entry.get("configurations", [])):
            for row in configuration.get("runs", []):
                key = (row["task"], method, index, row["seed"])
                if key not in runs or not row.get("finished") or "config" not in row:
                    continue
                train_config = runs[key][0]
                if _run_state(train_config) != "not started" or configuration["settings"] != grids[method][index]:
                    continue  # the run directory's own state comes first; another grid's configuration is another run
                changed = changed_settings(train_config, row["config"])
                if changed:
                    logger.info(f"[tune] {'/'.join(map(str, key))} in {out} was trained with other settings "
                                f"({', '.join(changed)}); it is trained again")
                    continue
                if check_pieces and uses_pieces(method):
                    if method not in current_pieces:
                        current_pieces[method] = pieces_fingerprint(
                            get_method(method).load_pieces(train_config, check_dataset=False))
                    if row.get("pieces") != current_pieces[method]:
                        logger.info(f"[tune] {'/'.join(map(str, key))} in {out} learned on other pre-trained pieces "
                                    f"than {config.run_dir} holds; it is trained again")
                        continue
                recorded[key] = {"config": row["config"], "pieces": row.get("pieces"),
                                 "episodes": episodes.get(key, [])}
    return recorded


def _write_tuning_episodes(path: Path, finished: dict[tuple, dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, TUNING_EPISODE_FIELDS)
        writer.writeheader()
        for (task, method, index, seed), run in sorted(finished.items()):
            writer.writerows({"task": task, "method": method, "configuration": index, "seed": seed, **episode}
                             for episode in run["episodes"])
    tmp.replace(path)


def _run_scores(config: TuneConfig, run: dict, score: str) -> dict:
    """A finished run's training AUC and final training score."""
    steps, values = rolling_score(run["episodes"], score, config.window)
    return {"auc": area_under_curve(steps, values, config.env_steps),
            "final": float(values[-1]) if len(values) else float("nan")}


def _tuning_record(config: TuneConfig, grids: dict[str, list[dict]], seeds: list[int], runs: dict,
                   finished: dict[tuple, dict]) -> dict:
    score = domain_of(config).task_score(config.tasks[0])
    methods = {}
    for method, grid in grids.items():
        configurations = []
        for index, settings in enumerate(grid):
            rows = []
            for (task, m, i, seed), (train_config, _) in runs.items():
                if m == method and i == index:
                    run = finished.get((task, m, i, seed))
                    if run is None:
                        rows.append({"task": task, "seed": seed, "finished": False, "state": _run_state(train_config)})
                    else:
                        rows.append({"task": task, "seed": seed, "finished": True, "state": "finished",
                                     **_run_scores(config, run, score), "config": run["config"],
                                     "pieces": run["pieces"]})
            measured = [row[config.rule] for row in rows if row["finished"]]
            complete = len(measured) == len(rows)
            configurations.append({"settings": settings, "runs": rows,
                                   "score": float(np.nanmean(measured)) if complete and measured else None})
        # The rule decides only once every configuration is measured; ties go to the earlier (the defaults first).
        scored = [c["score"] for c in configurations]
        chosen = None if any(s is None or np.isnan(s) for s in scored) else int(np.argmax(scored))
        methods[method] = {"configurations": configurations, "chosen_index": chosen,
                           "chosen": None if chosen is None else configurations[chosen]["settings"]}
    return {"schema": TUNING_SCHEMA, "command": invoked_command("tune"), "domain": config.domain,
            "tasks": list(config.tasks), "start_inventory": list(config.start_inventory), "env_steps": config.env_steps,
            "seeds": seeds, "rule": config.rule, "window": config.window, "score": score, "methods": methods}


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings.items()) or "the method's defaults"


def tuning_markdown(config: TuneConfig, record: dict) -> str:
    rule = {"auc": "training AUC (the mean training score over the budget)",
            "final": f"final training score (the last {config.window} training episodes)"}[config.rule]
    seeds = record["seeds"]
    lines = [f"# {config.domain}: tuning {', '.join(config.methods)}", "", f"Command: `{record['command']}`", "",
             f"Every method tries {len(next(iter(record['methods'].values()))['configurations'])} configurations "
             f"on task(s) {', '.join(config.tasks)}, tuning seed(s) {', '.join(map(str, seeds))} (not the "
             f"benchmark's), {config.env_steps} env steps each. Rule, fixed before the runs: the highest {rule}, mean "
             "over tasks and seeds; a tie goes to the earlier configuration (the method's defaults come first). "
             "A method is chosen for only once all its configurations have finished.", "",
             "| method | configuration | settings | training AUC (per run) | final training score (per run) | "
             "chosen |", "|---|---|---|---|---|---|"]
    for method, entry in record["methods"].items():
        for index, configuration in enumerate(entry["configurations"]):
            rows = configuration["runs"]
            auc = ", ".join(f"{r['auc']:.2f}" if r["finished"] else r["state"] for r in rows)
            final = ", ".join(f"{r['final']:.2f}" if r["finished"] else r["state"] for r in rows)
            done = [r for r in rows if r["finished"]]
            mean = f" (mean {mean_std([r[config.rule] for r in done])})" if len(rows) > 1 and done else ""
            lines.append(f"| {method} | {index} | {_settings_text(configuration['settings'])} | "
                         f"{auc}{mean if config.rule == 'auc' else ''} | {final}{mean if config.rule == 'final' else ''}"
                         f" | {'✓' if entry['chosen_index'] == index else ''} |")
    lines += ["", f"`ptgm bench --tuned {Path(config.out) / 'tuning.json'}` trains each method with its chosen "
              "settings.", "", "Training curves: `tuning_curves.png`."]
    return "\n".join(lines) + "\n"


def _plot_tuning_curves(config: TuneConfig, grids: dict[str, list[dict]], finished: dict[tuple, dict],
                        path: Path) -> None:
    from ptgm.plots import plot_learning_curve_panels

    score = domain_of(config).task_score(config.tasks[0])
    panels: dict[str, dict[str, list]] = {}
    for (_, method, index, _), run in sorted(finished.items()):
        label = f"{index}: {_settings_text(grids[method][index])}"
        panels.setdefault(method, {}).setdefault(label, []).append(rolling_score(run["episodes"], score, config.window))
    if panels:
        plot_learning_curve_panels(panels, path, f"{config.domain} {', '.join(config.tasks)}: tuning",
                                   ylabel="training " + score, columns=min(3, len(panels)))


def load_tuning(path: str | Path) -> dict:
    """A `ptgm tune` record, or a clear error when ``path`` is not one."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise PTGMError(f"--tuned {path}: no such file; run `ptgm tune` first (it writes OUT/tuning.json).") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PTGMError(f"--tuned {path} is not a readable tuning record ({exc}); rerun `ptgm tune`.") from None
    if not isinstance(record, dict) or record.get("schema") != TUNING_SCHEMA or "methods" not in record:
        raise PTGMError(f"--tuned {path} is not a tuning.json of this version of `ptgm tune`; rerun it.")
    return record


def check_tuned(config: BenchConfig) -> None:
    """That ``config.tuned`` tuned this benchmark's domain and every method it runs, on seeds it does not report."""
    record = load_tuning(config.tuned)
    if record["domain"] != config.domain:
        raise PTGMError(f"--tuned {config.tuned} tuned the {record['domain']} domain, not {config.domain}.")
    overlap = sorted(set(record["seeds"]) & set(range(config.seeds)))
    if overlap:
        raise PTGMError(f"--tuned {config.tuned} was tuned on seed(s) {', '.join(map(str, overlap))}, which this "
                        "benchmark reports; tune on others (`ptgm tune --first-seed`) or report fewer --seeds.")
    untuned = [m for m in config.methods if (record["methods"].get(m) or {}).get("chosen") is None]
    if untuned:
        raise PTGMError(f"--tuned {config.tuned} has no chosen settings for {', '.join(untuned)} (not tuned, or its "
                        "tuning is unfinished): every method benchmarked gets the same tuning; run `ptgm tune` for "
                        "them to the end.")


def tuned_settings(config: BenchConfig, method: str) -> dict:
    """The settings ``method``'s tuning chose (``config.tuned``), or none without --tuned."""
    if not getattr(config, "tuned", None):
        return {}
    return dict(load_tuning(config.tuned)["methods"][method]["chosen"])
