"""How long the command line takes to answer: `ptgm --help`, `ptgm train --help`, and `import ptgm`.

Each command runs in a fresh interpreter ``--repeats`` times (after one warm-up run, so the file cache is warm);
the table gives the median and the slowest wall-clock time.

    python benchmarks/cli_startup.py            # writes results/cli_startup.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "ptgm --help": [sys.executable, "-m", "ptgm.cli", "--help"],
    "ptgm train --help": [sys.executable, "-m", "ptgm.cli", "train", "--help"],
    "ptgm bench --help": [sys.executable, "-m", "ptgm.cli", "bench", "--help"],
    "python -c 'import ptgm'": [sys.executable, "-c", "import ptgm"],
    "python -c 'import torch' (for scale)": [sys.executable, "-c", "import torch"],
}


def wall_seconds(cmd: list[str], repeats: int) -> list[float]:
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="results/cli_startup.md")
    args = parser.parse_args()
    rows = []
    for name, cmd in COMMANDS.items():
        times = wall_seconds(cmd, args.repeats)
        rows.append(f"| `{name}` | {statistics.median(times):.2f} s | {max(times):.2f} s |")
        print(rows[-1], flush=True)
    lines = ["# Command-line start-up", "",
             f"Command: `python benchmarks/cli_startup.py --repeats {args.repeats}`; {platform.processor() or platform.machine()}, "
             f"Python {platform.python_version()}. Wall-clock time of a fresh interpreter, {args.repeats} runs after "
             "one warm-up.", "",
             "| command | median | slowest |", "|---|---|---|", *rows, ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
