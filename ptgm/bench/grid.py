"""Running a benchmark's grid: the pre-training stages once, then every (task, method, seed) in worker processes."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import as_completed
from pathlib import Path

from ptgm.baselines.spirl import SpirlConfig, train_spirl
from ptgm.clustering.codebook import ClusterConfig, cluster
from ptgm.data.generate import GenerateConfig, generate
from ptgm.domains import domain_of
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.methods import get_method
from ptgm.prior.train import PriorConfig, train_prior
from ptgm.progress import progress
from ptgm.settings import BenchConfig, TrainConfig
from ptgm.train import run_directory, train
from ptgm.utils import PTGMError, worker_pool

logger = logging.getLogger(__name__)


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
    return get_method(method).pieces is not None


def uses_pretraining(config: BenchConfig) -> bool:
    """Whether any of the benchmark's methods uses the pre-trained pieces."""
    return any(uses_pieces(method) for method in config.methods)


def _pretrain_stages(config: BenchConfig) -> dict:
    if config.share_from:
        _link_shared_stages(config)
    pieces = dict(run_dir=config.run_dir, domain=config.domain, dataset=config.dataset, goal_keys=config.goal_keys)
    common = dict(pieces, resume=True)
    # A dataset given (e.g. --domain minari) is the play data: nothing to generate.
    data = generate(GenerateConfig(transitions=config.transitions, play=config.play, **common)) if not config.dataset else (
        dataset_summary(config))
    memory = dict(memory_rows=config.memory_rows)
    low = pretrain(PretrainConfig(steps=config.pretrain_steps, **common, **memory))
    codebook = cluster(ClusterConfig(n_clusters=config.n_clusters, **pieces, **memory))
    if codebook["n_clusters"] != config.n_clusters:  # a finished stage is reused as it is; say so, not record it wrong
        raise PTGMError(f"{config.run_dir} holds a codebook of {codebook['n_clusters']} goals, not the "
                        f"{config.n_clusters} asked for. Give this goal count its own run directory that reuses "
                        f"the data and low-level policy: --run-dir {config.run_dir}-n{config.n_clusters} "
                        f"--share-from {config.run_dir}.")
    prior = train_prior(PriorConfig(steps=config.prior_steps, **common, **memory))
    stages = {"data": data, "lowlevel": low, "prior": prior, "fingerprint": codebook.get("fingerprint")}
    for method, closed_loop in (("spirl", False), ("spirl-cl", True)):  # SPiRL's skills and prior, same data
        if method in config.methods and not config.summarize_only:
            stages[method] = train_spirl(SpirlConfig(closed_loop=closed_loop, **common, **memory))
    return stages


def dataset_summary(config: BenchConfig) -> dict:
    """What the summary says of a dataset given with --dataset (where `ptgm generate` would say it of its play)."""
    from ptgm.data.generate import load_run_dataset

    data = load_run_dataset(config.run_dir, config.dataset, domain_of(config).dataset_observation_key)
    return {"dataset": config.dataset, "episodes": data.n_episodes, "transitions": data.n_transitions}


def run_logged(train_config: TrainConfig, log: str) -> int:
    """Train one run in this (worker) process with its output appended to ``log``; 0 when it finished, else 1.

    The worker's file descriptors are pointed at the log, so output from C extensions lands there too.
    """
    import os
    import traceback

    from ptgm.utils import log_to_stdout

    with open(log, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    log_to_stdout()
    try:
        train(train_config)
    except PTGMError as exc:
        print(f"ptgm train: error: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the bench reports the run as failed and goes on with the others
        traceback.print_exc()
        return 1
    return 0


def _log_path(config: BenchConfig, task: str, method: str, seed: int) -> Path:
    return Path(config.run_dir) / "logs" / f"train-{task}-{method}-seed{seed}.log"


def run_grid(config: BenchConfig, jobs: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Train every (task, method, seed) of ``jobs``, ``config.parallel`` at a time, each in a fresh worker process
    (its own core and memory) logged to RUN_DIR/logs; returns the jobs that failed."""
    return run_trainings(config, {job: (_train_config(config, *job), _log_path(config, *job)) for job in jobs})


def run_trainings(config: BenchConfig, runs: dict[tuple, tuple[TrainConfig, Path]],
                  on_finished: Callable[[tuple], None] | None = None) -> list[tuple]:
    """Train every run of ``runs`` (key → its settings and log file) as `ptgm bench` does: ``config.parallel`` at a
    time in fresh worker processes, or as Ray tasks with ``config.ray_address``; returns the keys that failed.
    ``on_finished(key)`` is called as each run finishes, e.g. to record it while the others train."""
    failed = []
    if not runs:
        return failed
    for _, log in runs.values():
        log.parent.mkdir(parents=True, exist_ok=True)
    if config.ray_address:
        return _run_on_ray(config, runs, on_finished)
    # One task per worker: each run gets a fresh process; an interrupted bench terminates its runs (they resume).
    with worker_pool(config.parallel, max_tasks_per_child=1) as pool, \
            progress(total=len(runs), desc="bench runs", unit="run") as bar:
        futures = {pool.submit(run_logged, train_config, str(log)): key for key, (train_config, log) in runs.items()}
        for future in as_completed(futures):
            key = futures[future]
            bar.update()
            if future.result() != 0:
                failed.append(key)
                logger.warning(f"[bench] {'/'.join(map(str, key))} failed; see {runs[key][1]}")
            elif on_finished is not None:
                on_finished(key)
    return failed


def _run_on_ray(config: BenchConfig, runs: dict[tuple, tuple[TrainConfig, Path]],
                on_finished: Callable[[tuple], None] | None = None) -> list[tuple]:
    """Every run as a Ray task with ``config.run_cpus`` / ``run_gpus``; returns the keys that failed (a run whose
    node was lost is retried by Ray and resumes from its checkpoint; one that fails for good counts as failed)."""
    from ptgm import raycluster

    raycluster.connect(config.ray_address)
    tasks = {raycluster.submit(run_logged, (train_config, str(log)), num_cpus=config.run_cpus,
                               num_gpus=config.run_gpus): key for key, (train_config, log) in runs.items()}
    failed = []
    with progress(total=len(runs), desc="bench runs", unit="run") as bar:
        for key, code in raycluster.results(tasks):
            bar.update()
            if code != 0:
                failed.append(key)
                logger.warning(f"[bench] {'/'.join(map(str, key))} failed on the Ray cluster; see {runs[key][1]}")
            elif on_finished is not None:
                on_finished(key)
    return failed


def _train_config(config: BenchConfig, task: str, method: str, seed: int, **overrides) -> TrainConfig:
    """The settings `ptgm bench` trains (task, method, seed) with: the benchmark's, then the method's tuned ones
    (--tuned), then ``overrides``."""
    from ptgm.bench.tune import tuned_settings

    settings = dict(run_dir=config.run_dir, domain=config.domain, dataset=config.dataset, goal_keys=config.goal_keys,
                    task=task, start_inventory=config.start_inventory, method=method, seed=seed,
                    env_steps=config.env_steps, k=config.k, gamma=config.gamma, anneal_lr=config.anneal_lr,
                    ent_coef=config.ent_coef, kl_coef=config.kl_coef, normalize_advantage=config.normalize_advantage,
                    eval_episodes=config.eval_episodes, device=config.device, resume=True)
    return TrainConfig(**{**settings, **tuned_settings(config, method), **overrides})


def _run_started(config: BenchConfig, task: str, method: str, seed: int) -> bool:
    directory = run_directory(_train_config(config, task, method, seed))
    return (directory / "DONE.json").exists() or (directory / "checkpoint.json").exists()
