"""Ray on one machine: play generation with 1 and 2 Ray worker nodes, and a small benchmark grid locally and on a
2-node local Ray cluster (each node one CPU; `ray.cluster_utils.Cluster`, head node running nothing).

Writes results/ray.md. Run it on an otherwise idle machine (2 cores here).

    python benchmarks/ray_scale.py
    python benchmarks/ray_scale.py --transitions 40000 --env-steps 20000 --out results/ray.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def generate(run_dir: Path, transitions: int, **kind) -> float:
    """Transitions/s of `ptgm generate` (8 shards), on a Ray cluster (``address``) or local ``workers``."""
    from ptgm.cli import main

    args = ["generate", "--run-dir", str(run_dir), "--transitions", str(transitions),
            "--shard-transitions", str(transitions // 8)]
    args += ["--ray-address", kind["address"]] if "address" in kind else ["--workers", str(kind["workers"])]
    start = time.perf_counter()
    assert main(args) == 0
    wall = time.perf_counter() - start
    summary = json.loads((run_dir / "data" / "DONE.json").read_text())["summary"]
    return summary["transitions"] / wall


def bench(run_dir: Path, env_steps: int, **kind) -> float:
    """Wall seconds of a grid of flat PPO on collect_wood, 2 seeds (nothing to pre-train)."""
    from ptgm.cli import main

    args = ["bench", "--run-dir", str(run_dir), "--out", str(run_dir / "results"), "--methods", "ppo", "--seeds",
            "2", "--env-steps", str(env_steps), "--eval-episodes", "5"]
    args += ["--ray-address", kind["address"]] if "address" in kind else ["--parallel", "2"]
    start = time.perf_counter()
    assert main(args) == 0
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=40_000)
    parser.add_argument("--env-steps", type=int, default=20_000)
    parser.add_argument("--out", default="results/ray.md")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray
    from ray.cluster_utils import Cluster

    from ptgm.data.generate import load_run_dataset
    from ptgm.utils import write_report

    rows, tmp = {}, Path(tempfile.mkdtemp())
    rows["local, 1 worker process"] = generate(tmp / "g-local1", args.transitions, workers=1)
    rows["local, 2 worker processes"] = generate(tmp / "g-local2", args.transitions, workers=2)
    bench_local = bench(tmp / "b-local", args.env_steps)
    for nodes in (1, 2):
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        rows[f"Ray, {nodes} worker node{'s' if nodes > 1 else ''} of 1 CPU"] = generate(
            tmp / f"g-ray{nodes}", args.transitions, address=cluster.address)
        if nodes == 2:
            bench_ray = bench(tmp / "b-ray", args.env_steps, address=cluster.address)
        ray.shutdown()
        cluster.shutdown()
    same = load_run_dataset(tmp / "g-ray2").fingerprint == load_run_dataset(tmp / "g-local1").fingerprint
    one_ray = rows["Ray, 1 worker node of 1 CPU"]
    lines = ["# Ray on one machine", "",
             f"Made by `python benchmarks/ray_scale.py --transitions {args.transitions} --env-steps {args.env_steps}` on "
             f"{os.cpu_count()} cores (a local `ray.cluster_utils.Cluster`: a head node that runs nothing and worker "
             "nodes of one CPU each).", "",
             f"## Play generation (Crafter, {args.transitions} transitions in 8 shards)", "",
             "| where | transitions/s | against 1 Ray worker |", "|---|---:|---:|"]
    lines += [f"| {name} | {rate:.0f} | {rate / one_ray:.2f}× |" for name, rate in rows.items()]
    lines += ["", f"The dataset played on the 2-node Ray cluster is {'identical to' if same else 'NOT the same as'} "
              "the one a single local process plays with the same seed (same fingerprint).", "",
              f"## Benchmark grid (flat PPO, collect_wood, 2 seeds × {args.env_steps} env steps)", "",
              "| where | wall seconds |", "|---|---:|",
              f"| local, `--parallel 2` | {bench_local:.0f} |", f"| Ray, 2 worker nodes of 1 CPU | {bench_ray:.0f} |"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, lines, {"generation_transitions_per_second": rows, "same_dataset": same,
                                   "bench_wall_seconds": {"local": bench_local, "ray_2_nodes": bench_ray}})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
