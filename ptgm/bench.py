"""`ptgm bench`: every (task, method, seed) on one pre-trained run, side by side.

The pre-training stages run once in the run directory (each reused when finished, resumed
when interrupted; skipped when every method learns from scratch, e.g. flat SAC alone); then every downstream run goes as its own `ptgm train` process,
``parallel`` at a time (one per core), each checkpointed, so a stopped benchmark resumes
where it was and finished runs are skipped. The results folder gets:

- ``curves.csv``: every training episode of every run (env steps, return, length, success);
- ``summary.md`` / ``summary.json``: per (task, method), mean ± std over seeds of the final
  evaluation, the score of the first training episodes, the area under the training curve,
  and the env steps at which the training curve first reaches the threshold;
- ``learning_curves_TASK.png``: mean ± std bands per method; ``learning_curves.png``: the same, one
  panel per task in one figure (benchmarks of several tasks);
- copies of the goal codebook pictures and the dataset coverage the runs used.

The results folder is also the benchmark's durable record: a finished run it holds (its
episodes in ``curves.csv``, its summary and full training settings in ``summary.json``) counts
as finished when its run directory is gone, e.g. on a fresh clone, as long as the benchmark's
settings and the run's training settings are the same as now. So a benchmark too long for
one machine's session is carried on by the next one from the committed results.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ptgm.baselines.spirl import SpirlConfig, train_spirl
from ptgm.cli import config_arguments
from ptgm.clustering.codebook import ClusterConfig, cluster
from ptgm.data.generate import GenerateConfig, generate
from ptgm.domains import get_domain
from ptgm.hrl.train import METHODS, SCRATCH_METHODS, TrainConfig, episode_row, read_episodes, run_directory
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.plots import plot_learning_curve_panels, plot_learning_curves
from ptgm.prior.train import PriorConfig, train_prior
from ptgm.utils import (
    PTGMError,
    atomic_write_bytes,
    atomic_write_json,
    config_dict,
    fill_domain_defaults,
    invoked_command,
    recorded_settings,
    stage_done,
)


@dataclass
class BenchConfig:
    """Hyper-parameters of `ptgm bench`."""

    run_dir: str = field(default="", metadata={"help": "run directory holding (or receiving) the pre-trained "
                                                       "pieces and the RL runs (empty: runs/DOMAIN)"})
    domain: str = field(default="crafter", metadata={"help": "domain plug-in"})
    tasks: tuple[str, ...] = field(default=(), metadata={"help": "tasks (empty: the domain's default task)"})
    methods: tuple[str, ...] = field(default=(), metadata={
        "help": f"methods, of {', '.join(METHODS)} (empty: the domain's, Crafter ptgm ppo, Kitchen ptgm spirl sac)"})
    seeds: int = field(default=3, metadata={"help": "seeds per (task, method): 0 .. seeds-1"})
    env_steps: int = field(default=100_000, metadata={"help": "environment-step budget of every run",
                                                      "aliases": ("--steps",)})
    transitions: int = field(default=0, metadata={"help": "play dataset size (0: the domain's default)"})
    pretrain_steps: int = field(default=30_000, metadata={"help": "low-level policy gradient steps"})
    n_clusters: int = field(default=0, metadata={"help": "number of cluster goals (0: the domain's, Crafter 64, "
                                                             "Kitchen 200)"})
    prior_steps: int = field(default=15_000, metadata={"help": "goal prior gradient steps"})
    k: int = field(default=10, metadata={"help": "environment steps per high-level step (the interval ablation)"})
    gamma: float = field(default=0.0, metadata={
        "help": "discount of every run (0: each method's own, as in `ptgm train`: the domain's high-level one "
                "for ptgm and spirl, 0.99 flat)"})
    anneal_lr: bool = field(default=False, metadata={
        "help": "every run decays its learning rate linearly to 0 over the budget (`ptgm train --anneal-lr`)"})
    ent_coef: float = field(default=0.01, metadata={
        "help": "PPO entropy bonus of every PPO-based run (`ptgm train --ent-coef`; SAC tunes its own)"})
    normalize_advantage: bool = field(default=True, metadata={
        "help": "every PPO-based run standardises its minibatch advantages (`ptgm train --no-normalize-advantage`)"})
    kl_coef: float = field(default=0.01, metadata={
        "help": "α, the weight of KL(prior ‖ policy) in PTGM's reward, of every ptgm run (`ptgm train --kl-coef`)"})
    share_from: str = field(default="", metadata={
        "help": "another run directory whose finished play data and low-level policy this one links to (and its "
                "codebook and prior when it has N_CLUSTERS goals): ablations over the number of clusters or k "
                "without pre-training again"})
    eval_episodes: int = field(default=100, metadata={"help": "final evaluation episodes per run"})
    parallel: int = field(default=2, metadata={"help": "RL runs at a time (one per core)"})
    window: int = field(default=20, metadata={"help": "training episodes in the rolling score of the curves"})
    threshold: float = field(default=float("nan"), metadata={
        "help": "score counted as solved for 'env steps to threshold' (default: the domain's, 0.9 success in "
                "Crafter, 3 subtasks in Kitchen)"})
    reference: str = field(default="", metadata={
        "help": "method whose final training score the others are timed to reach (empty: spirl if benchmarked, "
                "else the domain's flat baseline if benchmarked, else no such table)"})
    out: str = field(default="", metadata={"help": "results folder (empty: results/DOMAIN)"})
    summarize_only: bool = field(default=False, metadata={
        "help": "start no run: write the results of the runs finished so far (e.g. while a benchmark runs)"})

    def __post_init__(self) -> None:
        fill_domain_defaults(self)
        domain = get_domain(self.domain)
        self.tasks = tuple(self.tasks) or (domain.default_task,)
        self.methods = tuple(self.methods) or domain.bench_methods
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise PTGMError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}.")
        for task in self.tasks:
            domain.check_task(task)
        if np.isnan(self.threshold):
            self.threshold = domain.score_threshold
        self.out = self.out or f"results/{self.domain}"
        if self.reference and self.reference not in self.methods:
            raise PTGMError(f"--reference {self.reference} is not among the benchmarked methods "
                            f"({', '.join(self.methods)}); add it to --methods or pick one of them.")
        if not self.reference:  # a sweep of one method alone has nothing to time against
            self.reference = next((m for m in ("spirl", domain.flat_baseline) if m in self.methods), "")


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


def mean_std(values: list[float], digits: int = 2) -> str:
    """Mean ± std of the values that are not NaN, as text ("—" when none is)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]  # runs too short to have a value
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}" if len(values) else "—"


def _link_shared_stages(config: BenchConfig) -> None:
    """Symlink the finished stages of ``config.share_from`` that this benchmark can reuse as they are."""
    source, target = Path(config.share_from).resolve(), Path(config.run_dir)
    if not (source / "lowlevel" / "DONE.json").exists():
        raise PTGMError(f"--share-from {config.share_from} has no finished low-level policy; run the pre-training "
                        f"there first (e.g. `ptgm bench --run-dir {config.share_from}`).")
    stages = ["data", "lowlevel"]
    codebook = json.loads((source / "codebook" / "DONE.json").read_text()) if (
        source / "codebook" / "DONE.json").exists() else None
    if codebook is not None and codebook["summary"]["n_clusters"] == config.n_clusters:
        stages += ["codebook", "prior"]
    target.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        if (source / stage).exists() and not (target / stage).exists():
            (target / stage).symlink_to(source / stage, target_is_directory=True)


def uses_pieces(method: str) -> bool:
    """Whether ``method`` uses the pre-trained pieces (all but flat PPO and SAC, which learn from scratch, do)."""
    return method not in SCRATCH_METHODS


def uses_pretraining(config: BenchConfig) -> bool:
    """Whether any of the benchmark's methods uses the pre-trained pieces."""
    return any(uses_pieces(method) for method in config.methods)


def _pretrain_stages(config: BenchConfig) -> dict:
    if config.share_from:
        _link_shared_stages(config)
    common = dict(run_dir=config.run_dir, domain=config.domain, resume=True)
    data = generate(GenerateConfig(transitions=config.transitions, **common))
    low = pretrain(PretrainConfig(steps=config.pretrain_steps, **common))
    codebook = cluster(ClusterConfig(n_clusters=config.n_clusters, run_dir=config.run_dir, domain=config.domain))
    if codebook["n_clusters"] != config.n_clusters:  # a finished stage is reused as it is; say so, not record it wrong
        raise PTGMError(f"{config.run_dir} holds a codebook of {codebook['n_clusters']} goals, not the "
                        f"{config.n_clusters} asked for. Give this goal count its own run directory that reuses "
                        f"the data and low-level policy: --run-dir {config.run_dir}-n{config.n_clusters} "
                        f"--share-from {config.run_dir}.")
    prior = train_prior(PriorConfig(steps=config.prior_steps, **common))
    stages = {"data": data, "lowlevel": low, "prior": prior, "fingerprint": codebook.get("fingerprint")}
    if "spirl" in config.methods and not config.summarize_only:  # SPiRL's skills and skill prior, same data
        stages["spirl"] = train_spirl(SpirlConfig(**common))
    return stages


def _train_process(config: BenchConfig, task: str, method: str, seed: int) -> int:
    """One RL run as its own `ptgm train` process (own core, own memory), logged to RUN_DIR/logs."""
    log = Path(config.run_dir) / "logs" / f"train-{task}-{method}-seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ptgm.cli", "train", *config_arguments(_train_config(config, task, method, seed))]
    with open(log, "a") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


def bench(config: BenchConfig) -> dict:
    domain = get_domain(config.domain)
    # Finished runs the results folder records and the run directory lacks are not trained again.
    selection = [(task, method, seed) for seed in range(config.seeds) for task in config.tasks
                 for method in config.methods]
    recorded = recorded_runs(config)
    # Recorded runs this benchmark does not select (other methods, tasks or seeds) stay in the record.
    carried = [run for key, run in recorded.items() if key not in selection]
    recorded = {key: run for key, run in recorded.items()
                if key in selection and not _run_started(config, *key)}  # a run directory's own state comes first
    if recorded:
        print(f"[bench] {len(recorded)} finished run(s) recorded in {config.out}/summary.json count as done: "
              + ", ".join("/".join(map(str, key)) for key in recorded))
    jobs = [] if config.summarize_only else [job for job in selection if job not in recorded]
    record = benchmark_record(config)
    if not uses_pretraining(config):
        # Flat methods from scratch: nothing to pre-train or to match; a record's pieces stay with the runs of
        # other methods it carries.
        pretrained = (record or {}).get("pretrained") if carried else None
    elif record is not None and not any(uses_pieces(method) for _, method, _ in jobs) and not any(
            _run_started(config, *key) for key in selection if uses_pieces(key[1])):
        # Every run shown that uses the pieces comes from the results folder's record (runs from scratch, e.g. the
        # flat baselines' missing seeds, need none), so the numbers of its pieces come from there too (none in
        # records older than them), not from whatever pieces the run directory holds now, and none are trained.
        pretrained = record.get("pretrained")
        print(f"[bench] nothing to train that uses pre-trained pieces and no run of this benchmark that used them "
              f"in {config.run_dir}: the summary takes the pre-training numbers from {config.out}/summary.json"
              + ("" if pretrained else ", which has none"))
    else:
        # Summarising trains nothing, not even a missing pre-training stage.
        pretrained = finished_pretraining(config) if config.summarize_only else _pretrain_stages(config)
        if recorded or carried:  # (then the record is this benchmark's)
            check_same_pieces(config, record, pretrained)
    failed = []
    with ThreadPoolExecutor(config.parallel) as pool, tqdm(total=len(jobs), desc="bench runs", unit="run") as bar:
        for job, code in zip(jobs, pool.map(lambda j: _train_process(config, *j), jobs)):
            bar.update()
            if code != 0:
                failed.append(job)
                tqdm.write(f"[bench] {'/'.join(map(str, job))} failed (exit {code}); see "
                           f"{Path(config.run_dir) / 'logs' / f'train-{job[0]}-{job[1]}-seed{job[2]}.log'}")
    results = collect_results(config, domain.score, recorded)
    write_results(config, domain.score, pretrained, results, carried)
    if failed:
        raise PTGMError(f"{len(failed)} of {len(jobs)} runs failed; the summary covers the others. Fix the cause "
                        "shown in their logs and rerun the same command: finished runs are reused.")
    return {"runs": results}


def _train_config(config: BenchConfig, task: str, method: str, seed: int) -> TrainConfig:
    """The settings `ptgm bench` trains (task, method, seed) with (`_train_process` passes them on as flags)."""
    return TrainConfig(run_dir=config.run_dir, domain=config.domain, task=task, method=method, seed=seed,
                       env_steps=config.env_steps, k=config.k, gamma=config.gamma, anneal_lr=config.anneal_lr,
                       ent_coef=config.ent_coef, kl_coef=config.kl_coef, normalize_advantage=config.normalize_advantage,
                       eval_episodes=config.eval_episodes, resume=True)


def _run_started(config: BenchConfig, task: str, method: str, seed: int) -> bool:
    directory = run_directory(_train_config(config, task, method, seed))
    return (directory / "DONE.json").exists() or (directory / "checkpoint.json").exists()


#: Training settings that name where a run lives or how it was launched, not what it learned (``subproc``
#: steps the same environments in other processes, e.g. to finish a run sooner on cores freed by others).
_LAUNCH_SETTINGS = ("run_dir", "resume", "force", "subproc")
#: Benchmark settings a recorded run must share with the benchmark now to count in it.
_RECORD_SETTINGS = ("domain", "env_steps", "k", "gamma", "anneal_lr", "ent_coef", "kl_coef", "normalize_advantage",
                    "eval_episodes", "n_clusters", "transitions", "pretrain_steps", "prior_steps", "share_from")


def _other_settings(config: BenchConfig, record: dict) -> dict:
    """The benchmark settings a results record was made with that differ from ``config``'s.

    A record made before a setting existed ran with that setting's default (``recorded_settings``), so the
    defaults of settings added later must not change; ``test_bench`` pins them.
    """
    recorded = recorded_settings(record["config"], config)
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
    record = json.loads((out / "summary.json").read_text())
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
            train_config = _train_config(config, *key)
            now, then = config_dict(train_config), recorded_settings(run["config"], train_config)
            changed = [name for name, value in now.items() if name not in _LAUNCH_SETTINGS and then.get(name) != value]
            if changed:
                print(f"[bench] {'/'.join(map(str, key))} in {out} was trained with other settings "
                      f"({', '.join(changed)}); it is not counted (a benchmark of it trains it again)")
                continue
        runs[key] = {**run, "episode_rows": episodes.get(key, [])}  # (a short run may end no episode)
    if unchecked:
        print(f"[bench] {len(unchecked)} run(s) in {out} have no recorded training settings; they count on the "
              f"benchmark's settings alone: {', '.join(unchecked)}")
    return runs


def benchmark_record(config: BenchConfig) -> dict | None:
    """The results folder's record (``summary.json``) when it is of a benchmark with these settings, else None."""
    path = Path(config.out) / "summary.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if _other_settings(config, record):
        return None
    if record.get("pretrained") is None:  # recorded before summary.json kept them: its summary.md has them
        record["pretrained"] = pretraining_from_markdown(path.with_suffix(".md"))
    return record


def check_same_pieces(config: BenchConfig, record: dict, pretrained: dict) -> None:
    """Stop when the results folder's ``record`` holds runs trained on other pre-trained pieces than the run
    directory's (``pretrained``).

    Counting those runs, or writing this benchmark's summary over them, would mix runs of two datasets under
    one header. Pieces are the same when their dataset fingerprints agree (records made before the fingerprint
    was kept: when their datasets have as many episodes and transitions). A record older than the pre-training
    numbers cannot be checked; that is said, and its runs count on the settings alone.
    """
    theirs = record.get("pretrained")
    if theirs is None:
        print(f"[bench] {config.out}/summary.json predates the record of pre-trained pieces: it cannot be checked "
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
    return (f"dataset {pretrained.get('fingerprint') or 'fingerprint not recorded'}, {data['episodes']} episodes, "
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
                )
                results.append(summary)
    return results


def write_results(config: BenchConfig, score: str, pretrained: dict | None, results: list[dict],
                  carried: list[dict] = ()) -> None:
    """Curves, summary, plots and pictures of ``results`` into the results folder; ``carried``: recorded runs
    outside this benchmark's selection, kept in ``curves.csv`` and ``summary.json`` but left out of the tables."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(config.run_dir)
    # Every training episode of every run, in one table.
    with open(out / "curves.csv.tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, ["task", "method", "seed", "env_steps", "return", "length", "success"])
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
    if len(config.tasks) > 1:
        plot_learning_curve_panels(curves_by_task, out / "learning_curves.png", ylabel=label,
                                   title=f"{config.domain}: training {label} (last {config.window} episodes), "
                                         "mean ± std over seeds, one panel per task")
    for picture in ("goals.png", "projection.png") if uses_pretraining(config) else ():
        if (run_dir / "codebook" / picture).exists():
            shutil.copy(run_dir / "codebook" / picture, out / f"codebook_{picture}")
    if uses_pretraining(config) and (run_dir / "data" / "coverage.md").exists():
        shutil.copy(run_dir / "data" / "coverage.md", out / "dataset_coverage.md")
    atomic_write_json(out / "summary.json", {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "runs": [{k: v for k, v in r.items() if k not in ("curve", "episode_rows")} for r in [*results, *carried]],
        # What the summary's header reports, so that a fresh clone can write it again without pre-training.
        "pretrained": None if pretrained is None else {
            key: pretrained.get(key) for key in ("data", "lowlevel", "prior", "fingerprint")}})
    table = summary_markdown(config, score, pretrained, results)
    atomic_write_bytes(out / "summary.md", table.encode())
    print("\n" + table + f"\nResults in {out}/")


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
        f"- dataset: {data['episodes']} episodes, {data['transitions']} transitions of scripted play",
        f"- low-level policy: {accuracy[0]} {accuracy[1]:.3f}; goal-reaching test {reach['success_rate']:.2f} with "
        f"the true goal vs {reach['control_success_rate']:.2f} with a shuffled goal ({reach['trials']} trials, "
        f"horizon {reach['horizon']})",
        f"- goal prior: held-out accuracy {prior['val_accuracy']:.3f} (top-5 {prior['val_top5_accuracy']:.3f}) over "
        f"{prior['n_goals']} goals"]


_PRETRAINING_LINES = (
    r"- dataset: (?P<episodes>\d+) episodes, (?P<transitions>\d+) transitions of scripted play",
    r"- low-level policy: held-out action (?P<metric>accuracy|MSE) (?P<value>[\d.]+); goal-reaching test "
    r"(?P<success_rate>[\d.]+) with the true goal vs (?P<control_success_rate>[\d.]+) with a shuffled goal "
    r"\((?P<trials>\d+) trials, horizon (?P<horizon>\d+)\)",
    r"- goal prior: held-out accuracy (?P<val_accuracy>[\d.]+) \(top-5 (?P<val_top5_accuracy>[\d.]+)\) over "
    r"(?P<n_goals>\d+) goals",
)


def pretraining_from_markdown(summary: Path) -> dict | None:
    """The pre-training numbers that an older benchmark wrote only into its ``summary.md`` (the inverse of
    :func:`pretraining_markdown`), or None when it has none. Without a dataset fingerprint; pieces are then
    compared by dataset size."""
    text = summary.read_text() if summary.exists() else ""
    found = [re.search("^" + line + "$", text, re.MULTILINE) for line in _PRETRAINING_LINES]
    if not all(found):
        return None
    data, low, prior = (match.groupdict() for match in found)
    metric = "val_action_accuracy" if low["metric"] == "accuracy" else "val_action_mse"
    return {
        "data": {"episodes": int(data["episodes"]), "transitions": int(data["transitions"])},
        "lowlevel": {metric: float(low["value"]), "goal_reaching": {
            "success_rate": float(low["success_rate"]), "control_success_rate": float(low["control_success_rate"]),
            "trials": int(low["trials"]), "horizon": int(low["horizon"])}},
        "prior": {"val_accuracy": float(prior["val_accuracy"]), "val_top5_accuracy": float(prior["val_top5_accuracy"]),
                  "n_goals": int(prior["n_goals"])},
        "fingerprint": None,
    }


def summary_markdown(config: BenchConfig, score: str, pretrained: dict | None, results: list[dict]) -> str:
    name = "success" if score == "success" else "return"
    lines = [
        f"# {config.domain}: {', '.join(config.methods)}", "",
        f"Command: `{invoked_command('bench')}`", "",
        *(pretraining_markdown(pretrained) if uses_pretraining(config) else
          ["- pre-trained pieces: none; every method here learns from scratch"]), "",
        f"Final evaluation: {config.eval_episodes} episodes per run with the trained (stochastic) policy. Training "
        f"{name} is the mean over the last {config.window} training episodes; \"first\" is that over each run's "
        f"first {config.window} episodes; AUC is the mean training {name} over the env-step budget; the threshold "
        f"is {config.threshold:g}. Mean ± std over seeds. Runs \"in progress\" count with their training curve "
        "so far and have no final evaluation yet.", "",
        f"| task | method | seeds | env steps (per seed) | eval success | eval return | first {config.window} episodes | "
        f"training AUC | env steps to {name} ≥ {config.threshold:g} (per seed) | env steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
                f"{mean_std([r['first_window'] for r in group])} | {mean_std([r['auc'] for r in group])} | "
                f"{reach_steps} | {f'{np.mean(speeds):.0f}' if speeds else '—'} |")
    if config.reference:
        lines += reference_markdown(config, results, name)
    lines += subtask_markdown(config, results)
    lines += ["", "Learning curves: " + ("`learning_curves.png` (one panel per task), " if len(config.tasks) > 1 else "")
              + ", ".join(f"`learning_curves_{t}.png`" for t in config.tasks)]
    if uses_pretraining(config):
        lines += ["", "Goal codebook: `codebook_goals.png` (the dataset state nearest each K-means centre), "
                  "`codebook_projection.png` (2-D projection of the goal features coloured by cluster); "
                  "dataset coverage: `dataset_coverage.md`"]
    return "\n".join(lines) + "\n"


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
