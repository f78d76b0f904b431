"""`ptgm generate`: record task-agnostic play of a domain's scripted player as a Minari dataset."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ptgm.data.dataset import write_minari
from ptgm.domains import domain_of, get_domain
from ptgm.progress import progress
from ptgm.settings import GenerateConfig
from ptgm.utils import (
    PTGMError,
    atomic_savez,
    atomic_write_bytes,
    atomic_write_json,
    mark_stage_done,
    prepare_stage,
    worker_pool,
)

logger = logging.getLogger(__name__)

DATASET_ID = "play-v0"


def data_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "data"


def dataset_path(run_dir: str | Path) -> Path:
    return data_dir(run_dir) / DATASET_ID


def generate_shard(domain_name: str, shard: int, seed: int, transitions: int, max_episode_steps: int,
                   play: str | None, path: str) -> dict:
    """Play episodes until ``transitions`` steps are recorded; save them to ``path`` (atomically)."""
    arrays = play_shard(domain_name, shard, seed, transitions, max_episode_steps, play)
    return save_shard(arrays, path, shard)


def save_shard(arrays: dict, path: str | Path, shard: int) -> dict:
    """Write a played shard (atomically); what was played, for the progress bar."""
    atomic_savez(Path(path), **arrays)
    return {"shard": shard, "transitions": int(arrays["lengths"].sum()), "seconds": float(arrays["seconds"])}


def play_shard(domain_name: str, shard: int, seed: int, transitions: int, max_episode_steps: int,
               play: str | None = None) -> dict:
    """Play episodes until ``transitions`` steps are recorded: the shard's arrays (what a Ray task returns to the
    machine that writes the dataset). The same seed plays the same shard on any machine. ``play``: the kind of
    play, for a domain whose player has several."""
    domain = get_domain(domain_name)
    env = domain.make_env(None, max_steps=max_episode_steps)
    rng = np.random.default_rng(seed)
    obs_list, act_list, lengths, seeds, rewards, terms, truncs, achieved = [], [], [], [], [], [], [], []
    recorded = 0
    start = time.perf_counter()
    while recorded < transitions:
        episode_seed = int(rng.integers(2**31 - 1))
        obs, info = env.reset(seed=episode_seed)
        player = domain.scripted_player(env, rng, **({"style": play} if play else {}))
        ep_obs, ep_act, infos = [obs], [], [info]
        done = False
        while not done:
            action = player(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            ep_obs.append(obs)
            ep_act.append(action)
            infos.append(info)
            # A player may end its own episode (e.g. Kitchen play once its plan of subtasks is done).
            done = terminated or truncated or getattr(player, "finished", False)
        obs_list.append(np.stack(ep_obs))
        act_list.append(np.asarray(ep_act))
        lengths.append(len(ep_act))
        seeds.append(episode_seed)
        rewards.append(np.zeros(len(ep_act)))
        terms.append(terminated)
        truncs.append(truncated or not terminated)  # a player that stops its episode truncates it
        achieved.append(sorted(domain.episode_achievements(infos)))
        recorded += len(ep_act)
    elapsed = time.perf_counter() - start
    return dict(
        observations=np.concatenate(obs_list),
        actions=np.concatenate(act_list),
        lengths=np.asarray(lengths),
        seeds=np.asarray(seeds),
        terminated=np.asarray(terms),
        truncated=np.asarray(truncs),
        achievements=np.asarray(json.dumps(achieved)),
        seconds=np.asarray(elapsed),
    )


def _read_shard(path: Path) -> list[dict]:
    with np.load(path) as z:
        lengths = z["lengths"]
        obs, act = z["observations"], z["actions"]
        achieved = json.loads(str(z["achievements"]))
        episodes, o, a = [], 0, 0
        for i, n in enumerate(lengths):
            terminated = np.zeros(n, bool)
            truncated = np.zeros(n, bool)
            terminated[-1] = bool(z["terminated"][i])
            truncated[-1] = bool(z["truncated"][i])
            episodes.append({
                "observations": obs[o : o + n + 1], "actions": act[a : a + n], "rewards": np.zeros(n),
                "terminations": terminated, "truncations": truncated, "seed": int(z["seeds"][i]),
                "achievements": achieved[i],
            })
            o += n + 1
            a += n
    return episodes


def coverage_table(episodes: list[dict], names: list[str]) -> dict[str, float]:
    """Fraction of episodes that unlock each achievement."""
    counts = {name: 0 for name in names}
    for ep in episodes:
        for name in ep["achievements"]:
            counts[name] = counts.get(name, 0) + 1
    return {name: counts[name] / max(1, len(episodes)) for name in counts}


def generate(config: GenerateConfig) -> dict:
    """Run the scripted player in parallel shards and write ``RUN_DIR/data/play-v0`` (Minari)."""
    domain = domain_of(config)
    domain.check_can_play()
    if config.dataset:
        raise PTGMError(f"`ptgm generate` records new play; --dataset {config.dataset} names play that exists: pass "
                        "it to `ptgm pretrain`, `cluster`, `prior` and `train` instead.")
    if config.ray_address:  # before anything is written: an unreachable cluster is a clear error at once
        from ptgm import raycluster

        raycluster.connect(config.ray_address)
    out = data_dir(config.run_dir)
    previous = prepare_stage(out, config, config.force, config.resume, "generate")
    if previous is not None:
        return previous
    n_shards = max(1, int(np.ceil(config.transitions / config.shard_transitions)))
    per_shard = int(np.ceil(config.transitions / n_shards))
    jobs = []
    for shard in range(n_shards):
        path = out / f"checkpoint-shard-{shard:04d}.npz"
        if not path.exists():
            jobs.append((config.domain, shard, config.seed * 100003 + shard, per_shard, config.max_episode_steps,
                         config.play, str(path)))
    start = time.perf_counter()
    if jobs:
        where = f"Ray cluster {config.ray_address}" if config.ray_address else f"{config.workers} workers"
        logger.info(f"[generate] {len(jobs)} of {n_shards} shards to play ({per_shard} transitions each), {where}")
        with progress(total=len(jobs) * per_shard, unit="step", desc="generate") as bar:
            if config.ray_address:  # each shard a Ray task; this machine writes what they return
                from ptgm import raycluster

                tasks = {raycluster.submit(play_shard, job[:-1], fresh_process=False): job for job in jobs}
                for task, arrays in raycluster.as_completed(tasks):
                    bar.update(save_shard(arrays, tasks[task][-1], tasks[task][1])["transitions"])
            elif config.workers <= 1:
                for job in jobs:
                    bar.update(generate_shard(*job)["transitions"])
            else:
                with worker_pool(config.workers) as pool:
                    for result in pool.map(generate_shard, *zip(*jobs)):
                        bar.update(result["transitions"])
    wall = time.perf_counter() - start
    episodes = [ep for shard in range(n_shards) for ep in _read_shard(out / f"checkpoint-shard-{shard:04d}.npz")]
    env = domain.make_env(None)
    write_minari(out, DATASET_ID, episodes, env.observation_space, env.action_space,
                 description=f"Task-agnostic {config.domain} play by ptgm's scripted player"
                             + (f" ({config.play} play)" if config.play else "") + f", {len(episodes)} episodes.")
    transitions = sum(len(ep["actions"]) for ep in episodes)
    coverage = coverage_table(episodes, domain.achievement_names())
    summary = {
        "dataset": str(dataset_path(config.run_dir)),
        "episodes": len(episodes),
        "transitions": transitions,
        "mean_episode_length": transitions / len(episodes),
        "generation_seconds": wall,
        "transitions_per_second": (len(jobs) * per_shard / wall) if jobs else None,
        "coverage": coverage,
    }
    atomic_write_json(out / "coverage.json", summary)
    atomic_write_bytes(out / "coverage.md", coverage_markdown(summary).encode())
    mark_stage_done(out, config, summary)  # removes the shards (checkpoint-shard-*) once the dataset is finished
    logger.info(coverage_markdown(summary))
    return summary


def coverage_markdown(summary: dict) -> str:
    lines = [
        f"Dataset: {summary['episodes']} episodes, {summary['transitions']} transitions "
        f"(mean episode length {summary['mean_episode_length']:.0f}).",
        "",
        "| achievement | fraction of episodes |",
        "|---|---|",
    ]
    lines += [f"| {name} | {frac:.2f} |" for name, frac in sorted(summary["coverage"].items(), key=lambda kv: -kv[1])]
    if summary.get("transitions_per_second"):
        lines += ["", f"Generation speed: {summary['transitions_per_second']:.0f} transitions/s."]
    return "\n".join(lines) + "\n"


def run_dataset_path(run_dir: str | Path, dataset: str | None = None) -> str | Path:
    """Where the dataset a stage trains on lies: ``dataset`` (a Minari path or id) if given, else the run's own
    (a clear error when the run has none yet)."""
    from ptgm.utils import PTGMError

    if dataset:
        return dataset
    path = dataset_path(run_dir)
    if not (path / "data" / "metadata.json").exists():
        raise PTGMError(
            f"No dataset in {path}. Generate it first with `ptgm generate --run-dir {run_dir}`, "
            "or pass --dataset PATH_OR_MINARI_ID."
        )
    return path


def load_run_dataset(run_dir: str | Path, dataset: str | None = None, observation_key: str | None = None):
    """The dataset a stage trains on, loaded whole: ``dataset`` (a Minari path or id) if given, else the run's own.

    ``observation_key`` picks the flat observation out of dictionary observations (D4RL kitchen).
    """
    from ptgm.data.dataset import load_minari

    return load_minari(run_dataset_path(run_dir, dataset), observation_key=observation_key)
