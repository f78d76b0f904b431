"""Pre-training the low-level policy in one process against two under torchrun (DDP, gloo, CPU), same global batch.

Plays a Crafter dataset once (`ptgm generate`), then trains the low-level policy on it with `ptgm pretrain` in
one process and with `torchrun --nproc-per-node 2` (each process one thread), and compares samples/s and the
final held-out loss; writes results/ddp.md. Run it on an otherwise idle machine.

    python benchmarks/ddp_pretrain.py
    python benchmarks/ddp_pretrain.py --steps 4000 --transitions 100000 --batch-sizes 512 --out results/ddp.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptgm.utils import write_report


def run(args: list[str], env: dict) -> None:
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=100_000, help="play dataset size")
    parser.add_argument("--steps", type=int, default=4000, help="gradient steps of each pre-training")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 2048],
                        help="global batches to measure (each split over the processes)")
    parser.add_argument("--processes", type=int, default=2, help="torchrun processes")
    parser.add_argument("--out", default="results/ddp.md")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ptgm = [sys.executable, "-m", "ptgm.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_run = Path(tmp) / "data"
        run([*ptgm, "generate", "--run-dir", str(data_run), "--transitions", str(args.transitions)], env)
        for batch in args.batch_sizes:
            common = ["--device", "cpu", "--steps", str(args.steps), "--batch-size", str(batch),
                      "--eval-every", str(max(1, args.steps // 10)), "--goal-trials", "1"]
            for processes in (1, args.processes):
                run_dir = Path(tmp) / f"b{batch}-p{processes}"
                shutil.copytree(data_run / "data", run_dir / "data")
                launch = ptgm if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                      f"--nproc-per-node={processes}", "-m", "ptgm.cli"]
                start = time.perf_counter()
                run([*launch, "pretrain", "--run-dir", str(run_dir), *common], env)
                summary = json.loads((run_dir / "lowlevel" / "DONE.json").read_text())["summary"]
                rows.append({"batch": batch, "processes": processes, "wall_s": time.perf_counter() - start,
                             "samples_per_second": summary["samples_per_second"], "val_loss": summary["val_loss"],
                             "val_action_accuracy": summary["val_action_accuracy"]})
                print(rows[-1])
            # The machine's ceiling: as many independent one-process pre-trainings at the same time, each on its
            # share of the batch, with no communication at all (their samples/s summed).
            share = batch // args.processes
            independent = ["--device", "cpu", "--steps", str(args.steps), "--batch-size", str(share),
                           "--eval-every", str(args.steps), "--goal-trials", "1"]
            dirs = [Path(tmp) / f"b{batch}-alone{i}" for i in range(args.processes)]
            for run_dir in dirs:
                shutil.copytree(data_run / "data", run_dir / "data")
            jobs = [subprocess.Popen([*ptgm, "pretrain", "--run-dir", str(d), *independent], env=env,
                                     stdout=subprocess.DEVNULL) for d in dirs]
            if any(job.wait() != 0 for job in jobs):
                raise SystemExit("an independent pre-training failed")
            ceiling = sum(json.loads((d / "lowlevel" / "DONE.json").read_text())["summary"]["samples_per_second"]
                          for d in dirs)
            rows[-1]["ceiling"] = ceiling
            print(f"{args.processes} independent processes of batch {share}: {ceiling:.0f} samples/s together")
    command = (f"python benchmarks/ddp_pretrain.py --transitions {args.transitions} --steps {args.steps} "
               f"--batch-sizes {' '.join(map(str, args.batch_sizes))} --processes {args.processes}")
    lines = ["# Pre-training under torchrun (DDP, CPU)", "",
             f"Made by `{command}` on {os.cpu_count()} cores: the Crafter low-level policy (default network), "
             f"{args.steps} gradient steps of each global batch, one thread per process, gloo. Samples/s counts "
             "the training steps (validation and checkpoints left out); wall time is the whole `ptgm pretrain` "
             "command, start-up and the goal-reaching test included. The ceiling is what the machine gives "
             f"{args.processes} independent one-process pre-trainings run at the same time, each on its share of "
             "the batch, with no communication (their samples/s summed, as a speed-up over one process): no DDP "
             "run on this machine can pass it.", "",
             "| global batch | processes | samples/s | speed-up | ceiling | wall time (s) | held-out loss | change | "
             "held-out action accuracy |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = next(r for r in rows if r["batch"] == row["batch"] and r["processes"] == 1)
        lines.append(f"| {row['batch']} | {row['processes']} | {row['samples_per_second']:.0f} | "
                     f"{row['samples_per_second'] / base['samples_per_second']:.2f}× | "
                     + (f"{row['ceiling'] / base['samples_per_second']:.2f}×" if "ceiling" in row else "") + " | "
                     f"{row['wall_s']:.0f} | "
                     f"{row['val_loss']:.4f} | {100 * (row['val_loss'] / base['val_loss'] - 1):+.1f}% | "
                     f"{row['val_action_accuracy']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, lines, {"command": command, "rows": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
