"""The results folder as the benchmark's record: which recorded runs count, and every run's summary and curve."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from ptgm.bench.grid import _train_config
from ptgm.bench.metrics import area_under_curve, late_drop, rolling_score, steps_to_threshold
from ptgm.settings import BenchConfig, TrainConfig
from ptgm.train import episode_row, read_episodes, run_directory
from ptgm.utils import (
    PTGMError,
    config_dict,
    recorded_settings,
    stage_done,
)

logger = logging.getLogger(__name__)

#: Version of the layout of a results record (``summary.json``). Records of another version were made by other
#: code (whose settings meant other things) and are not mixed with this one's runs.
RECORD_SCHEMA = 2


def read_record(out: Path) -> dict:
    """The results record in folder ``out``, refused with a clear error when another version of ptgm wrote it."""
    record = json.loads((Path(out) / "summary.json").read_text())
    if record.get("schema") != RECORD_SCHEMA:
        raise PTGMError(f"{out} holds a results record of another version of ptgm (record schema "
                        f"{record.get('schema', 1)}, this one writes {RECORD_SCHEMA}); its runs cannot be counted "
                        f"with new ones. Give this benchmark its own --out, or move {out} away to rerun it there.")
    return record


#: Training settings that name where a run lives or how it was launched, not what it learned (``subproc``
#: steps the same environments in other processes, e.g. to finish a run sooner on cores freed by others).
_LAUNCH_SETTINGS = ("run_dir", "resume", "force", "subproc", "device")


#: Benchmark settings a recorded run must share with the benchmark now to count in it.
_RECORD_SETTINGS = ("domain", "env_steps", "k", "gamma", "anneal_lr", "ent_coef", "kl_coef", "normalize_advantage",
                    "eval_episodes", "n_clusters", "transitions", "pretrain_steps", "prior_steps", "share_from",
                    "start_inventory", "play")


def changed_settings(train_config: TrainConfig, recorded: dict) -> list[str]:
    """The training settings (not where or how the run was launched) that a run recorded with ``recorded`` was
    trained with differently from ``train_config``."""
    now, then = config_dict(train_config), recorded_settings(recorded, train_config)
    return [name for name, value in now.items() if name not in _LAUNCH_SETTINGS and then.get(name) != value]


def _other_settings(config: BenchConfig, record: dict) -> dict:
    """The benchmark settings a results record was made with that differ from ``config``'s.

    A record made before a setting existed ran with that setting's default (``recorded_settings``), so the
    defaults of settings added later must not change; ``test_bench`` pins them.
    """
    recorded = {key: tuple(value) if isinstance(value, list) else value  # JSON keeps tuples as lists
                for key, value in recorded_settings(record["config"], config).items()}
    return {key: recorded.get(key) for key in _RECORD_SETTINGS if recorded.get(key) != getattr(config, key)}


def _other_out(config: BenchConfig) -> str:
    """A results folder named after the run directory (``results/crafter-n16`` for ``runs/crafter-n16``)."""
    named = Path(config.out).parent / Path(config.run_dir).name
    return str(named) if named != Path(config.out) else f"{config.out}-{config.env_steps}"


def recorded_runs(config: BenchConfig) -> dict[tuple[str, str, int], dict]:
    """Finished runs of an earlier benchmark recorded in the results folder, by (task, method, seed).

    Each entry is that run's summary with its episodes (``"episode_rows"``). Only runs of a benchmark
    with the same settings count, and only those whose recorded training settings (kept since
    results record them) equal what the benchmark would train with now: a run made under other
    defaults is trained again.
    """
    out = Path(config.out)
    if not ((out / "summary.json").exists() and (out / "curves.csv").exists()):
        return {}
    record = read_record(out)
    differ = _other_settings(config, record)
    if differ:
        if any(not run.get("in_progress") for run in record["runs"]):
            # Writing this benchmark's summary there would lose that record.
            raise PTGMError(
                f"{out} holds the results of another benchmark ({', '.join(f'{k}={v}' for k, v in differ.items())}); "
                f"give this one its own --out (e.g. --out {_other_out(config)}), or move that folder away.")
        return {}
    episodes: dict[tuple[str, str, int], list[dict]] = {}
    with open(out / "curves.csv") as f:
        for row in csv.DictReader(f):
            episodes.setdefault((row["task"], row["method"], int(row["seed"])), []).append(episode_row(row))
    runs, unchecked = {}, []
    for run in record["runs"]:
        key = (run["task"], run["method"], run["seed"])
        if run.get("in_progress"):
            continue
        if "config" not in run:  # recorded before results kept training settings
            unchecked.append("/".join(map(str, key)))
        else:
            changed = changed_settings(_train_config(config, *key), run["config"])
            if changed:
                logger.info(f"[bench] {'/'.join(map(str, key))} in {out} was trained with other settings "
                      f"({', '.join(changed)}); it is not counted (a benchmark of it trains it again)")
                continue
        runs[key] = {**run, "episode_rows": episodes.get(key, [])}  # (a short run may end no episode)
    if unchecked:
        logger.info(f"[bench] {len(unchecked)} run(s) in {out} have no recorded training settings; they count on the "
              f"benchmark's settings alone: {', '.join(unchecked)}")
    return runs


def benchmark_record(config: BenchConfig) -> dict | None:
    """The results folder's record (``summary.json``) when it is of a benchmark with these settings, else None."""
    path = Path(config.out) / "summary.json"
    if not path.exists():
        return None
    record = read_record(path.parent)
    if _other_settings(config, record):
        return None
    return record


def check_same_pieces(config: BenchConfig, record: dict, pretrained: dict) -> None:
    """Stop when the results folder's ``record`` holds runs trained on other pre-trained pieces than the run
    directory's (``pretrained``).

    Counting those runs, or writing this benchmark's summary over them, would mix runs of two datasets under
    one header. Pieces are the same when their codebook fingerprints agree (the codebook's own: its dataset,
    settings and goals; records made before a fingerprint was kept: when their datasets have as many episodes
    and transitions). A record older than the pre-training
    numbers cannot be checked; that is said, and its runs count on the settings alone.
    """
    theirs = record.get("pretrained")
    if theirs is None:
        logger.info(f"[bench] {config.out}/summary.json predates the record of pre-trained pieces: it cannot be checked "
              f"that its runs used the pieces in {config.run_dir}")
        return
    if theirs.get("fingerprint") and pretrained.get("fingerprint"):
        same = theirs["fingerprint"] == pretrained["fingerprint"]
    else:
        same = all(theirs["data"][key] == pretrained["data"][key] for key in ("episodes", "transitions"))
    if not same:
        raise PTGMError(f"{config.out} records runs trained on other pre-trained pieces ({_pieces(theirs)}) than "
                        f"{config.run_dir} holds ({_pieces(pretrained)}); they cannot be counted or summarised "
                        f"with it. Give this benchmark its own --out (e.g. --out {_other_out(config)}), or the "
                        "--run-dir those runs were trained with (to write this summary again from its record alone, "
                        "with --summarize-only: a --run-dir that holds no pieces).")


def _pieces(pretrained: dict) -> str:
    data = pretrained["data"]
    return (f"codebook {pretrained.get('fingerprint') or 'fingerprint not recorded'}, {data['episodes']} episodes, "
            f"{data['transitions']} transitions")


def finished_pretraining(config: BenchConfig) -> dict:
    """The summaries of the run directory's finished pre-training stages, for ``--summarize-only``."""
    stages = {stage: stage_done(Path(config.run_dir) / stage) for stage in ("data", "lowlevel", "prior")}
    missing = [stage for stage, done in stages.items() if done is None]
    if missing:
        raise PTGMError(f"--summarize-only trains nothing, but {config.run_dir} has no finished {', '.join(missing)} "
                        f"stage and {config.out}/summary.json records no pre-training of this benchmark's settings "
                        "to take the summary's numbers from. Run the same command without --summarize-only to "
                        "pre-train and train, or give the --run-dir and --out the benchmark was run with.")
    codebook = stage_done(Path(config.run_dir) / "codebook")
    return {**{stage: done["summary"] for stage, done in stages.items()},
            "fingerprint": codebook["summary"].get("fingerprint") if codebook else None}


def collect_results(config: BenchConfig, score: str, recorded: dict | None = None) -> list[dict]:
    """Summary and training curve of every finished run (or run in progress) in the run directory, and of the
    finished runs ``recorded`` in the results folder (see :func:`recorded_runs`) that the run directory lacks."""
    results = []
    recorded = recorded or {}
    for seed in range(config.seeds):
        for task in config.tasks:
            for method in config.methods:
                directory = run_directory(_train_config(config, task, method, seed))
                done, checkpoint = directory / "DONE.json", directory / "checkpoint.json"
                if done.exists():
                    finished = json.loads(done.read_text())
                    summary = {**finished["summary"], "config": finished["config"]}
                    episodes = read_episodes(directory / "episodes.csv")
                elif checkpoint.exists() and (directory / "episodes.csv").exists():
                    # A run still going (or stopped): its training curve so far, no final evaluation yet.
                    summary = {"env_steps": json.loads(checkpoint.read_text())["env_steps"], "in_progress": True,
                               "eval_success_rate": float("nan"), "eval_mean_return": float("nan"),
                               "env_steps_per_second": float("nan")}
                    episodes = read_episodes(directory / "episodes.csv")
                elif (task, method, seed) in recorded:
                    summary = dict(recorded[(task, method, seed)])
                    episodes = summary.pop("episode_rows")
                else:
                    continue
                steps, values = rolling_score(episodes, score, config.window)
                summary.update(
                    task=task, method=method, seed=seed, curve=(steps, values), episode_rows=episodes,
                    first_window=float(values[0]) if len(values) else float("nan"),
                    auc=area_under_curve(steps, values, summary["env_steps"]),  # runs in progress: so far
                    steps_to_threshold=steps_to_threshold(steps, values, config.threshold),
                    late_drop=None if summary.get("in_progress") else late_drop(episodes, score),
                )
                results.append(summary)
    return results
