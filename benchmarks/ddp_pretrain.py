"""Pre-training the low-level policy in one process against two under torchrun (DDP, gloo, CPU), same global batch.

Plays a Crafter dataset once (`ptgm generate`), then trains the low-level policy on it with `ptgm pretrain` in
one process and with `torchrun --nproc-per-node 2` (each process one thread), and compares samples/s and the
final held-out loss; writes results/ddp.md. Run it on an otherwise idle machine.

    python benchmarks/ddp_pretrain.py
    python benchmarks/ddp_pretrain.py --steps 4000 --transitions 100000 --out results/ddp.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def run(args: list[str], env: dict) -> None:
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=100_000, help="play dataset size")
    parser.add_argument("--steps", type=int, default=4000, help="gradient steps of each pre-training")
    parser.add_argument("--batch-size", type=int, default=512, help="global batch (split over the processes)")
    parser.add_argument("--processes", type=int, default=2, help="torchrun processes")
    parser.add_argument("--out", default="results/ddp.md")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ptgm = [sys.executable, "-m", "ptgm.cli"]
    common = ["--device", "cpu", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--eval-every", str(max(1, args.steps // 10)), "--goal-trials", "1"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_run = Path(tmp) / "data"
        run([*ptgm, "generate", "--run-dir", str(data_run), "--transitions", str(args.transitions)], env)
        for processes in (1, args.processes):
            run_dir = Path(tmp) / f"p{processes}"
            shutil.copytree(data_run / "data", run_dir / "data")
            launch = ptgm if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--nproc-per-node={processes}", "-m", "ptgm.cli"]
            run([*launch, "pretrain", "--run-dir", str(run_dir), *common], env)
            summary = json.loads((run_dir / "lowlevel" / "DONE.json").read_text())["summary"]
            rows.append({"processes": processes, "samples_per_second": summary["samples_per_second"],
                         "val_loss": summary["val_loss"], "val_action_accuracy": summary["val_action_accuracy"]})
    base = rows[0]
    lines = ["# Pre-training under torchrun (DDP, CPU)", "",
             f"Made by `python benchmarks/ddp_pretrain.py --transitions {args.transitions} --steps {args.steps} "
             f"--batch-size {args.batch_size} --processes {args.processes}` on {os.cpu_count()} cores: the Crafter "
             f"low-level policy (default network), {args.steps} gradient steps of a global batch of "
             f"{args.batch_size}, one thread per process, gloo.", "",
             "| processes | samples/s | speed-up | held-out loss | change | held-out action accuracy |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['processes']} | {row['samples_per_second']:.0f} | "
                     f"{row['samples_per_second'] / base['samples_per_second']:.2f}× | {row['val_loss']:.4f} | "
                     f"{100 * (row['val_loss'] / base['val_loss'] - 1):+.1f}% | {row['val_action_accuracy']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
