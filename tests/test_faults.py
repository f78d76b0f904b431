"""Fault injection: every bad setting, damaged or swapped artifact, diverging and killed stage ends in one clear
`ptgm CMD: error:` line or a correct resume; never a traceback, a silent wrong result or a process left behind.

Each test function is one kind of fault and each of its parameters one case; `python benchmarks/faults.py` runs
this file and counts the cases by kind into results/faults.md.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import torch

import ptgm.cli as cli
import ptgm.settings as settings
from ptgm.cli import COMMANDS, main
from ptgm.hrl.pretrained import Pretrained

# Small sizes of every stage, appended to the commands the suite runs (and to the fixes that errors name).
TINY = {
    "generate": "--transitions 3000 --shard-transitions 500 --workers 2",
    "pretrain": "--steps 200 --eval-every 50 --checkpoint-every 50 --batch-size 64 --hidden 32 --goal-trials 2",
    "cluster": "--n-clusters 8 --n-init 1",
    "prior": "--steps 200 --eval-every 50 --checkpoint-every 50 --batch-size 64 --hidden 32 32",
    "spirl": "--steps 200 --eval-every 50 --checkpoint-every 50 --batch-size 32 --hidden 32",
    "train": "--env-steps 400 --n-envs 2 --n-steps 8 --checkpoint-every 200 --eval-episodes 2",
    "evaluate": "--episodes 1",
}
RUN = "rl/collect_wood/ptgm-seed0"


def ptgm(capsys, command: str, run: Path | None = None) -> tuple[int, str]:
    """Run one `ptgm` command line in this process: its exit code and what it wrote to stderr."""
    args = shlex.split(command) + (["--run-dir", str(run)] if run is not None and "--run-dir" not in command else [])
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_clear_error(code: int, err: str, command: str, *needles: str) -> None:
    name = command.split()[0]
    assert code == 2, f"`ptgm {command}` exited {code}: {err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"ptgm {name}: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def fix_command(err: str) -> str:
    """The command an error names as its fix, without `ptgm`, with the suite's small sizes."""
    match = re.search(r"`ptgm ([^`]+)`", err)
    assert match, f"the error names no command to run: {err}"
    fix = match.group(1)
    return f"{fix} {TINY.get(fix.split()[0], '')}"


# -- 1. settings out of range, names, combinations ------------------------------------------------------------
def _numeric_fields() -> list[tuple[str, str, type, settings.Range | None]]:
    cases = []
    for command, (_, cls_name, _) in COMMANDS.items():
        cls = getattr(settings, cls_name)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            inner = [t for t in typing.get_args(kind) if t is not type(None)] or [kind]
            base = inner[0]
            if typing.get_origin(base) is tuple:
                base = typing.get_args(base)[0]
            if base in (int, float):
                cases.append((command, f.name, base, f.metadata.get("range")))
    return cases


def _out_of_range() -> list[tuple[str, str, str]]:
    cases = []
    for command, name, kind, allowed in _numeric_fields():
        values = []
        if allowed is not None:
            values += [allowed.at_least - 1] if allowed.at_least is not None else []
            values += [allowed.above] if allowed.above is not None else []
            values += [allowed.at_most + 1] if allowed.at_most is not None else []
            values += [allowed.below] if allowed.below is not None else []
        if kind is float:
            values += ["nan", "inf"]
        cases += [(command, name, str(value)) for value in values]
    return cases


def test_every_numeric_setting_declares_what_it_accepts():
    missing = [f"{command} --{name}" for command, name, _, allowed in _numeric_fields() if allowed is None]
    assert not missing, f"settings without a Range in their metadata: {missing}"


@pytest.fixture
def nothing_runs(monkeypatch):
    """A command whose settings pass would run for real; here it does nothing and exits 0 (which fails the test)."""
    for command, (help_text, cls_name, _) in COMMANDS.items():
        monkeypatch.setitem(cli.COMMANDS, command, (help_text, cls_name, "builtins:id"))


@pytest.mark.parametrize("command, name, value", _out_of_range(), ids=lambda v: str(v))
def test_setting_out_of_range(command, name, value, tmp_path, capsys, nothing_runs):
    flag = "--" + name.replace("_", "-")
    line = f"{command} {flag} {value}"
    code, err = ptgm(capsys, line, tmp_path / "run")
    assert_one_clear_error(code, err, line, flag)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("line, needle", [
    ("train --task collect_wod", "Unknown Crafter task 'collect_wod'"),
    ("train --domain kitchen --task microwave,kettel", "Unknown Kitchen subtask 'kettel'"),
    ("evaluate --domain kitchen --task microwave,microwave", "names a subtask twice"),
    ("train --method ptgm-nope", "invalid choice"),
    ("train --domain nowhere", "invalid choice"),
    ("bench --tasks collect_wood nope", "Unknown Crafter task 'nope'"),
    ("train --method sac", "needs continuous (Box) actions"),
    ("bench --methods ptgm spirl", "needs continuous (Box) actions"),
    ("report --method ppo", "picks none"),
    ("pretrain --k-min 5 --k-max 2", "1 ≤ --k-min ≤ --k-max"),
    ("pretrain --domain kitchen --action-head flow", "Unknown action head 'flow'"),
    ("bench --reference sac", "not among the benchmarked methods"),
    ("train --domain minari", "needs --dataset"),
    ("generate --dataset somewhere", "records new play"),
    ("pretrain --device tpu", "Unknown --device 'tpu'"),
    ("prior --amp --device cpu", "--amp (mixed precision) needs a GPU"),
    *([] if torch.cuda.is_available() else [("train --device cuda:0", "asks for a GPU this machine does not have")]),
    ("train --task collect_wood --start-inventory gold=1", "Unknown Crafter item 'gold'"),
    ("train --domain kitchen --start-inventory wood=1", "no inventory"),
    ("bench --tasks crafter collect_wood", "scored differently"),
])
def test_bad_name_or_combination(line, needle, tmp_path, capsys):
    code, err = ptgm(capsys, line, tmp_path / "run")
    if needle == "invalid choice":  # argparse's own line, after the usage
        assert code == 2 and f"ptgm {line.split()[0]}: error: argument" in err and needle in err, err
    else:
        assert_one_clear_error(code, err, line, needle)
    assert not list((tmp_path / "run").rglob("DONE.json"))


# -- 2. damaged and swapped artifacts ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tiny_run, tmp_path_factory) -> Path:
    """The tiny run of conftest plus a finished PTGM run on collect_wood."""
    run = tmp_path_factory.mktemp("faults") / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    assert main(["train", "--run-dir", str(run), *TINY["train"].split()]) == 0
    return run


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy, symlinks=True)
    return copy


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scramble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for i in rng.sample(range(len(data)), max(1, len(data) // 50)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not the file you are looking for\n" * 10)


CONSUMER = {  # the command that reads each artifact
    "data/play-v0/data/main_data.hdf5": "pretrain --force " + TINY["pretrain"],
    "lowlevel/policy.pt": "train --force " + TINY["train"],
    "codebook/codebook.npz": "train --force " + TINY["train"],
    "prior/prior.pt": "train --force " + TINY["train"],
    f"{RUN}/model.zip": "evaluate " + TINY["evaluate"],
}


@pytest.mark.parametrize("damage", [_truncate, _scramble, _garbage], ids=["truncated", "scrambled", "garbage"])
@pytest.mark.parametrize("artifact", list(CONSUMER))
def test_damaged_artifact(artifact, damage, run, capsys):
    """A damaged file stops its reader with one line naming the file and the command that really rebuilds it;
    that command works, and then so does the reader."""
    damage(run / artifact)
    code, err = ptgm(capsys, CONSUMER[artifact], run)
    if damage is _scramble and code == 0:
        pytest.skip("the flipped bytes missed everything the reader checks")  # e.g. only HDF5 padding
    assert_one_clear_error(code, err, CONSUMER[artifact])
    code, fix_err = ptgm(capsys, fix_command(err), run)
    assert code == 0, fix_err
    code, err = ptgm(capsys, CONSUMER[artifact], run)
    if artifact.startswith("data/") or artifact.startswith("lowlevel/"):
        # Rebuilding the data or the low-level policy changes the pieces; the error chain names each next stage.
        for _ in range(4):
            if code == 0:
                break
            assert_one_clear_error(code, err, CONSUMER[artifact].split()[0])
            assert ptgm(capsys, fix_command(err), run)[0] == 0
            code, err = ptgm(capsys, CONSUMER[artifact], run)
    assert code == 0, err


def _recluster_in_place(run: Path, capsys) -> None:
    assert ptgm(capsys, "cluster --force --seed 1 " + TINY["cluster"], run)[0] == 0


def _codebook_from_another_clustering(run: Path, capsys) -> None:
    other = run.parent / "other"
    shutil.copytree(run / "data", other / "data")
    assert ptgm(capsys, "cluster --seed 2 " + TINY["cluster"], other)[0] == 0
    shutil.copy(other / "codebook" / "codebook.npz", run / "codebook" / "codebook.npz")


def _prior_from_another_clustering(run: Path, capsys) -> None:
    other = run.parent / "other"
    shutil.copytree(run, other, symlinks=True)
    assert ptgm(capsys, "cluster --force --seed 3 " + TINY["cluster"], other)[0] == 0
    assert ptgm(capsys, "prior --force " + TINY["prior"], other)[0] == 0
    shutil.copy(other / "prior" / "prior.pt", run / "prior" / "prior.pt")


def _prior_in_place_of_policy(run: Path, capsys) -> None:
    shutil.copy(run / "prior" / "prior.pt", run / "lowlevel" / "policy.pt")


def _policy_retrained_in_place(run: Path, capsys) -> None:
    assert ptgm(capsys, "pretrain --force --seed 5 " + TINY["pretrain"], run)[0] == 0


@pytest.mark.parametrize("swap, reader, needle", [
    (_recluster_in_place, "train --force " + TINY["train"], "ptgm prior"),
    (_codebook_from_another_clustering, "train --force " + TINY["train"], "ptgm prior"),
    (_prior_from_another_clustering, "train --force " + TINY["train"], "ptgm prior"),
    (_prior_in_place_of_policy, "train --force " + TINY["train"], "not a low-level policy"),
    (_recluster_in_place, "evaluate " + TINY["evaluate"], "ptgm prior"),
    (_policy_retrained_in_place, "evaluate " + TINY["evaluate"], "ptgm train"),
    (_recluster_in_place, "prior " + TINY["prior"], "--force"),
], ids=lambda v: getattr(v, "__name__", str(v).split()[0]))
def test_swapped_artifact(swap, reader, needle, run, capsys):
    """Pieces that no longer belong together (one rebuilt or copied in) are refused with the fix; following the
    fixes one after another ends in a run that works."""
    swap(run, capsys)
    code, err = ptgm(capsys, reader, run)
    assert_one_clear_error(code, err, reader, needle)
    for _ in range(4):
        assert ptgm(capsys, fix_command(err), run)[0] == 0
        code, err = ptgm(capsys, reader, run)
        if code == 0:
            break
        assert_one_clear_error(code, err, reader)
    assert code == 0, err


def test_failed_force_leaves_nothing_old_to_use(run, capsys):
    """`--force` removes the old stage before it starts: when the new attempt fails, no later stage uses the old
    policy without a word."""
    code, err = ptgm(capsys, "pretrain --force --dataset /nowhere/at/all " + TINY["pretrain"], run)
    assert_one_clear_error(code, err, "pretrain")
    code, err = ptgm(capsys, "train --force " + TINY["train"], run)
    assert_one_clear_error(code, err, "train", "ptgm pretrain")


def test_resume_of_a_finished_stage_reuses_it_quietly(run, capsys):
    code, _ = ptgm(capsys, "prior --resume " + TINY["prior"], run)
    out = capsys.readouterr().out
    assert code == 0 and "differ" not in out


def test_damaged_checkpoint_and_marker(run, capsys):
    """A damaged checkpoint asks for --force (and that works); a damaged finished marker makes the stage redo."""
    shutil.copy(run / "prior" / "prior.pt", run / "prior" / "checkpoint.pt")
    (run / "prior" / "DONE.json").unlink()
    _truncate(run / "prior" / "checkpoint.pt")
    code, err = ptgm(capsys, "prior --resume " + TINY["prior"], run)
    assert_one_clear_error(code, err, "prior", "--force")
    assert ptgm(capsys, "prior --force " + TINY["prior"], run)[0] == 0
    (run / "lowlevel" / "DONE.json").write_text("{not json")
    assert ptgm(capsys, "pretrain " + TINY["pretrain"], run)[0] == 0
    assert (run / "lowlevel" / "DONE.json").read_text().startswith("{\n")


# -- 3. diverging stages -----------------------------------------------------------------------------------------
@pytest.fixture
def weights_turn_nan_after_3_updates(monkeypatch):
    real_step = torch.optim.Adam.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)


@pytest.fixture(scope="module")
def kitchen_data(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("kitchen") / "run"
    assert main(["generate", "--domain", "kitchen", "--run-dir", str(run), "--transitions", "600",
                 "--workers", "1"]) == 0
    return run


@pytest.mark.parametrize("stage", ["pretrain", "prior", "spirl", "train ptgm", "train ppo"])
def test_diverging_stage(stage, run, kitchen_data, capsys, weights_turn_nan_after_3_updates):
    """Weights that turn NaN mid-training stop the stage with the step, what diverged and the fix; no marker."""
    command, _, method = stage.partition(" ")
    where = kitchen_data if command == "spirl" else run
    line = f"{command} --force {TINY[command]}" + (f" --method {method}" if method else "") + (
        " --domain kitchen" if command == "spirl" else "")
    code, err = ptgm(capsys, line, where)
    assert_one_clear_error(code, err, line, "diverged", "--learning-rate")
    assert re.search(r"step \d+|after \d+ env steps", err), err
    stage_dir = {"pretrain": "lowlevel", "prior": "prior", "spirl": "spirl", "train": f"rl/collect_wood/{method}-seed0"}
    assert not (where / stage_dir[command] / "DONE.json").exists()


# -- 4. killed stages --------------------------------------------------------------------------------------------
def _session_processes(sid: int) -> list[str]:
    """The processes still alive in session ``sid`` (what a command started, its workers included)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                alive.append(f"{entry.name} {cmdline[:120]}")
        except (OSError, IndexError, ValueError):
            continue
    return alive


KILLED = {  # command, and the output line after which the signal comes (at a random delay)
    "generate": (f"generate --force {TINY['generate']} --shard-transitions 300", "shards to play"),
    "pretrain": ("pretrain --force --steps 3000 --eval-every 100 --checkpoint-every 100 --batch-size 64 --hidden 32 "
                 "--goal-trials 2", "pretrain"),
    "prior": ("prior --force --steps 3000 --eval-every 100 --checkpoint-every 100 --batch-size 64 --hidden 32 32",
              "prior"),
    "train": ("train --force --env-steps 3000 --n-envs 2 --n-steps 8 --checkpoint-every 300 --eval-episodes 2",
              "ptgm-seed0"),
    "train-subproc": ("train --force --subproc --env-steps 3000 --n-envs 2 --n-steps 8 --checkpoint-every 300 "
                      "--eval-episodes 2", "ptgm-seed0"),
    "bench": ("bench --methods ptgm ppo --seeds 1 --env-steps 1500 --n-clusters 8 --parallel 2 --eval-episodes 2 "
              "--out OUT", "bench runs"),
}
SIGNALLED = [(stage, signal.SIGKILL) for stage in KILLED] + [
    (stage, signal.SIGINT) for stage in ("generate", "train-subproc", "bench")]  # Ctrl-C: the whole process group


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("stage, signum", SIGNALLED, ids=lambda v: getattr(v, "name", v))
def test_killed_stage(stage, signum, run, tmp_path):
    """kill -9 (or Ctrl-C) at a random point: no process of the command is left (nor a traceback, for Ctrl-C), and
    the same command with --resume finishes with artifacts that load."""
    command, trigger = KILLED[stage]
    command = command.replace("OUT", str(tmp_path / "results"))
    args = [sys.executable, "-m", "ptgm.cli", *shlex.split(command), "--run-dir", str(run)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while trigger not in log.read_text() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(stage).uniform(0.2, 2.0))
    if signum == signal.SIGKILL:
        os.kill(process.pid, signal.SIGKILL)
    else:
        os.killpg(process.pid, signum)  # what a terminal does on Ctrl-C
    code = process.wait(timeout=60)
    if signum == signal.SIGINT:
        text = log.read_text()
        assert code in (0, 130) and "Traceback" not in text, text[-3000:]
        assert code == 0 or f"ptgm {stage.split('-')[0]}: interrupted" in text, text[-3000:]
    deadline = time.time() + 10
    while _session_processes(process.pid) and time.time() < deadline:
        time.sleep(0.2)
    left = _session_processes(process.pid)
    for line in left:
        os.kill(int(line.split()[0]), signal.SIGKILL)
    assert not left, f"processes left behind by a killed `ptgm {stage}`: {left}"

    # The same command continues: with --resume for a stage, as it is for `ptgm bench` (which always resumes).
    again = [*args[:3], *shlex.split(command.replace("--force", "")), "--run-dir", str(run)]
    resumed = subprocess.run(again + ([] if stage == "bench" else ["--resume"]), capture_output=True, text=True,
                             env=env, timeout=300)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    assert not list(run.rglob("*.tmp*")), "half-written files left"
    if stage == "generate":
        from ptgm.data.generate import load_run_dataset

        assert load_run_dataset(run).n_transitions >= 3000
    elif stage.startswith("train"):
        assert (run / RUN / "DONE.json").exists() and (run / RUN / "agent.zip").exists()
    elif stage == "bench":
        assert (tmp_path / "results" / "summary.json").exists()
    else:
        Pretrained.load(run)
