"""Run the fault-injection suite (tests/test_faults.py) and count its cases by kind into results/faults.md.

Each case injects one fault (a bad setting, a damaged or swapped file, weights that turn NaN, kill -9 of a
running command) and passes when the command ends in one clear `ptgm CMD: error:` line naming the fix, or
when rerunning it resumes correctly with nothing left behind. A failing case is a silent wrong behaviour or a
traceback.

    python benchmarks/faults.py                 # writes results/faults.md
    python benchmarks/faults.py --out FILE.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

KINDS = {  # test function → what kind of fault its cases inject
    "test_every_numeric_setting_declares_what_it_accepts": "every numeric setting declares the range it accepts",
    "test_setting_out_of_range": "setting out of range (each bound of every numeric setting; NaN and inf for reals)",
    "test_bad_name_or_combination": "unknown task, subtask, method or domain; impossible combination",
    "test_damaged_artifact": "damaged file (dataset, low-level policy, codebook, prior, trained learner × "
                             "truncated, scrambled, garbage)",
    "test_swapped_artifact": "swapped or rebuilt piece (reclustered in place, copied from another clustering, "
                             "wrong kind of file, retrained low level)",
    "test_failed_force_leaves_nothing_old_to_use": "stale state: a failed --force",
    "test_resume_of_a_finished_stage_reuses_it_quietly": "stale state: --resume of a finished stage",
    "test_damaged_checkpoint_and_marker": "stale state: damaged checkpoint and finished marker",
    "test_diverging_stage": "weights turning NaN in training (low level, prior, SPiRL, PTGM, PPO)",
    "test_killed_stage": "kill -9 (generate, pretrain, prior, train, train --subproc, bench) or Ctrl-C (generate, "
                         "train --subproc, bench) at a random point, then the same command",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/faults.md", help="Markdown file to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_faults.py",
                        f"--junitxml={report}"], check=False)
        cases = ET.parse(report).getroot().iter("testcase")
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        failures: list[str] = []
        total_seconds = 0.0
        for case in cases:
            function = case.get("name").split("[")[0]
            total_seconds += float(case.get("time", 0))
            outcome = "skipped" if case.find("skipped") is not None else (
                "failed" if case.find("failure") is not None or case.find("error") is not None else "passed")
            counts[function][outcome] += 1
            if outcome == "failed":
                failures.append(case.get("name"))
    lines = ["# Fault injection", "",
             "Made by `python benchmarks/faults.py` (runs `tests/test_faults.py`, part of the test suite). A case "
             "passes when the command ends in one clear `ptgm CMD: error:` line naming the fix (and, for damaged "
             "or swapped files, following that fix makes the command work), or when rerunning it resumes "
             "correctly with no process and no half-written file left behind.", "",
             "| kind of fault | cases tried | clear error or correct resume | not applicable | silent wrong or traceback |",
             "|---|---:|---:|---:|---:|"]
    totals = defaultdict(int)
    for function, kind in KINDS.items():
        c = counts.get(function, {})
        tried = sum(c.values())
        for key in ("passed", "skipped", "failed"):
            totals[key] += c.get(key, 0)
        lines.append(f"| {kind} | {tried} | {c.get('passed', 0)} | {c.get('skipped', 0)} | {c.get('failed', 0)} |")
    unknown = sorted(set(counts) - set(KINDS))
    for function in unknown:
        c = counts[function]
        lines.append(f"| {function} | {sum(c.values())} | {c.get('passed', 0)} | {c.get('skipped', 0)} | "
                     f"{c.get('failed', 0)} |")
        for key in ("passed", "skipped", "failed"):
            totals[key] += c.get(key, 0)
    lines.append(f"| **all** | **{sum(totals.values())}** | **{totals['passed']}** | **{totals['skipped']}** | "
                 f"**{totals['failed']}** |")
    lines += ["", "Not applicable: a scrambled file whose flipped bytes missed everything its reader checks (the "
              "command then works, which is right).", "",
              f"Failing cases: {', '.join(failures) if failures else 'none'}.", "",
              f"The suite took {total_seconds:.0f} s on this machine."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
