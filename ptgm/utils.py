"""Small shared pieces: run directories, atomic writes, metrics logging, seeding, NaN checks, fingerprints,
worker pools that never outlive their command."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class PTGMError(ValueError):
    """An error a user can fix; its message says what went wrong and how to fix it."""


class _StdoutHandler(logging.Handler):
    """Writes each message as a plain line to whatever ``sys.stdout`` is when it is logged (so a redirected or
    captured stdout gets it, and a closed one of the past does not break logging)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def log_to_stdout(level: int = logging.INFO) -> None:
    """Show ptgm's log messages as plain lines on stdout (what the command line does); idempotent."""
    root = logging.getLogger("ptgm")
    root.setLevel(level)
    if not any(isinstance(h, _StdoutHandler) for h in root.handlers):
        root.addHandler(_StdoutHandler())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import torch  # here, not at the top: `ptgm --help` imports this module and must not wait for PyTorch

    torch.manual_seed(seed)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def write_report(out: str | Path, lines: list[str], record: dict) -> Path:
    """A benchmark's results: the Markdown ``lines`` (its table, with the command that made it) at ``out`` and
    ``record`` as JSON beside it (``out`` with the suffix ``.json``), each written atomically; returns the JSON's
    path."""
    out = Path(out)
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    atomic_write_json(out.with_suffix(".json"), record)
    return out.with_suffix(".json")


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write then rename, so an interrupted save never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    import torch

    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_savez(path: Path, **arrays) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def short_reason(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception's message (libraries explain a corrupt file at length)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split(". ")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_checkpoint(path: Path, what: str, fix: str) -> dict:
    """``torch.load`` with a clear message for a missing or corrupt file."""
    path = Path(path)
    if not path.exists():
        raise PTGMError(f"No {what} at {path}. {fix}")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a truncated/corrupt file
        raise PTGMError(f"The {what} at {path} is corrupt or unreadable ({short_reason(exc)}). {fix}") from exc


def check_finite(value: float, what: str, step: int, limit: float = float("inf")) -> None:
    """A clear error when ``value`` (a loss) is NaN or infinite, or beyond ``limit`` in size (it exploded)."""
    if not np.isfinite(value) or abs(value) > limit:
        how = "became" if not np.isfinite(value) else f"exploded to more than {limit:.3g}:"
        raise PTGMError(
            f"{what} {how} {value} at step {step}. Training diverged: lower the learning rate (--learning-rate) "
            "and start over with --force, or resume from the last checkpoint with --resume."
        )


def fingerprint_of(*parts: Any) -> str:
    """A short content hash of arrays, tensors, strings and numbers (in order): two things built differently
    get different fingerprints, the same content the same one."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        if hasattr(part, "detach"):  # a torch tensor
            part = part.detach().cpu().numpy()
        if isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part)
            digest.update(f"{part.shape}{part.dtype}".encode())
            digest.update(memoryview(part).cast("B") if part.size else b"")
        else:
            digest.update(repr(part).encode())
        digest.update(b"|")
    return digest.hexdigest()


class MetricsLogger:
    """Appends rows to ``metrics.csv`` and mirrors scalars to TensorBoard."""

    def __init__(self, directory: Path, resume: bool = False):
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.directory / "metrics.csv"
        if not resume and self.csv_path.exists():
            self.csv_path.unlink()
        self._fields: list[str] | None = None
        if self.csv_path.exists():
            with open(self.csv_path) as f:
                header = f.readline().strip()
            self._fields = header.split(",") if header else None
        self.writer = SummaryWriter(str(self.directory / "tb"))

    def log(self, step: int, **scalars: float) -> None:
        row = {"step": step, **scalars}
        if self._fields is None:
            self._fields = list(row)
            with open(self.csv_path, "w", newline="") as f:
                csv.DictWriter(f, self._fields).writeheader()
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, self._fields, extrasaction="ignore").writerow(row)
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


# -- stages -------------------------------------------------------------------------------
def config_dict(config: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=_json_default))


def recorded_settings(recorded: dict, config: Any) -> dict:
    """Settings recorded for a stage (its ``DONE.json`` config), completed for comparison with ``config``.

    A setting added to ``config``'s class after the stage ran is absent from the record; the stage ran with
    what that setting's default does, so the default stands in for it.
    """
    added = {f.name: f.default for f in dataclasses.fields(config)
             if f.name not in recorded and f.default is not dataclasses.MISSING}
    return {**json.loads(json.dumps(added, default=_json_default)), **recorded}


def stage_done(directory: Path) -> dict | None:
    """The summary a finished stage left in ``DONE.json``, or None."""
    marker = Path(directory) / "DONE.json"
    if marker.exists():
        try:
            return json.loads(marker.read_text())
        except json.JSONDecodeError:
            return None
    return None


#: Summary entries that say how fast a stage ran, not what it made: a stage redone to the same result (play
#: generated again from the same seeds) is the same stage, so its fingerprint leaves them out.
TIMINGS = frozenset({"seconds", "generation_seconds", "transitions_per_second", "samples_per_second", "wall_seconds",
                     "env_steps_per_second"})


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_timings(item) for key, item in value.items() if key not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(item) for item in value]
    return value


def _without_location(value: Any, run_dir: str) -> Any:
    """``value`` with the paths inside ``run_dir`` (e.g. a generated dataset's) written relative to it."""
    if isinstance(value, dict):
        return {key: _without_location(item, run_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_location(item, run_dir) for item in value]
    if isinstance(value, str) and (value == run_dir or value.startswith(run_dir.rstrip("/") + "/")):
        return "RUN_DIR" + value[len(run_dir.rstrip("/")):]
    return value


def stage_fingerprint(directory: Path, located: bool = False) -> str | None:
    """What a finished stage is, or None when it has not finished: a fingerprint of its finished marker's settings
    (where it ran aside), results (timings and the location of the run directory aside) and inputs. A stage redone
    to other results gets another one; redone to the same results (e.g. play generated again from the same seeds,
    in another run directory), the same one, so the stages built on it still fit.

    ``located``: the fingerprint of earlier versions, which kept the paths in the results (a dataset's) as they
    were: stages built on a stage then recorded that one, and still fit where the run directory has not moved.
    """
    marker = Path(directory) / "DONE.json"
    if not marker.exists():
        return None
    done = json.loads(marker.read_text())
    config = done.get("config", {})
    summary = _without_timings(done.get("summary"))
    if not located and config.get("run_dir"):
        summary = _without_location(summary, str(config["run_dir"]))
    what = {"config": {key: value for key, value in config.items() if key not in RUN_CONTROL},
            "summary": summary, "inputs": done.get("inputs", {})}
    return fingerprint_of(json.dumps(what, sort_keys=True))


def stage_inputs(run_dir: str | Path, *stages: str) -> dict[str, str | None]:
    """The fingerprints of a run's finished ``stages`` (their folders: ``data``, ``codebook`` ...): a stage's
    inputs."""
    return {stage: stage_fingerprint(Path(run_dir) / stage) for stage in stages}


def dataset_inputs(config: Any) -> dict[str, str | None]:
    """The input a stage that trains on play data records: the run's own finished data stage (nothing for a
    ``--dataset`` from elsewhere, which the pieces' dataset fingerprints check instead)."""
    return {} if getattr(config, "dataset", None) else stage_inputs(config.run_dir, "data")


def mark_stage_done(directory: Path, config: Any, summary: dict) -> None:
    """Write the finished marker (settings, summary and the inputs :func:`prepare_stage` recorded), then drop the
    stage's checkpoints: they were kept until now so that a stage killed after its last step resumes there."""
    directory = Path(directory)
    inputs_path = directory / "inputs.json"
    inputs = json.loads(inputs_path.read_text()) if inputs_path.exists() else {}
    atomic_write_json(directory / "DONE.json", {"config": config_dict(config), "summary": summary, "inputs": inputs})
    for path in directory.glob("checkpoint*"):
        path.unlink()


#: Settings that say how to run a stage, not what it computes: a finished stage is the same stage without them.
RUN_CONTROL = ("run_dir", "force", "resume", "device", "workers", "ray_address")


def clear_stage(directory: Path) -> None:
    """Remove a stage's directory and everything in it (a link to another run's stage: only the link)."""
    directory = Path(directory)
    if directory.is_symlink():
        directory.unlink()
    elif directory.exists():
        shutil.rmtree(directory)


def prepare_stage(directory: Path, config: Any, force: bool, resume: bool, name: str,
                  inputs: dict[str, str | None] | None = None) -> dict | None:
    """Returns the previous summary when the stage is finished and may be reused.

    Otherwise it makes the directory, records the config and returns None. A stage that
    was started but not finished needs ``--resume`` (continue) or ``--force`` (start over),
    so that work is never silently thrown away; ``--force`` removes the old stage's files
    before anything else, so nothing of it is used again.

    ``inputs`` names the fingerprints of what the stage is built from (its dataset, the codebook a prior learns);
    a finished stage or a checkpoint built from other inputs is refused with the command that rebuilds it.
    """
    directory = Path(directory)
    inputs = {key: value for key, value in (inputs or {}).items() if value is not None}
    done = stage_done(directory)
    if done is not None and "domain" in done["config"] and done["config"]["domain"] != getattr(config, "domain", None):
        raise PTGMError(
            f"[{name}] {directory} holds a {done['config']['domain']} run, not {config.domain}. "
            "Use another --run-dir (the default is runs/DOMAIN)."
        )
    if done is not None and not force:
        _check_inputs(done.get("inputs", {}), inputs, directory, name, "was built from", config)
        new, old = config_dict(config), recorded_settings(done["config"], config)
        # Where a stage lives is no setting of it: a run directory written once relative and once
        # absolute, moved, or whose stages are links to another's (--share-from) holds the same stage.
        changed = sorted(k for k in new if k not in RUN_CONTROL and old.get(k) != new[k])
        if changed:
            logger.info(f"[{name}] note: reusing the finished stage in {directory}, whose settings differ in "
                  f"{', '.join(changed)}; pass --force to redo it with the new settings.")
        else:
            logger.info(f"[{name}] already finished in {directory}; reusing it (pass --force to redo).")
        return done["summary"]
    if force:
        clear_stage(directory)
    elif directory.exists() and any(directory.glob("checkpoint*")):
        if not resume:
            raise PTGMError(f"[{name}] {directory} holds an unfinished run. Pass --resume to continue it or --force "
                            "to start over.")
        recorded = directory / "inputs.json"
        _check_inputs(json.loads(recorded.read_text()) if recorded.exists() else {}, inputs, directory, name,
                      "was started from", config)
    if done is None and directory.exists() and not any(directory.glob("checkpoint*")):
        clear_stage(directory)  # what an unfinished stage left without a checkpoint is no start to resume from
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.tmp*"):  # half-written files of a process that was killed while writing
        stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    atomic_write_json(directory / "config.json", config_dict(config))
    atomic_write_json(directory / "inputs.json", inputs)
    return None


def _check_inputs(recorded: dict, current: dict, directory: Path, name: str, verb: str, config: Any) -> None:
    def fits(key: str) -> bool:
        if recorded[key] == current[key]:
            return True
        # Recorded by an earlier version: the input stage's fingerprint of then (see stage_fingerprint).
        run_dir = getattr(config, "run_dir", None)
        return run_dir is not None and recorded[key] == stage_fingerprint(Path(run_dir) / key, located=True)

    changed = sorted(key for key in current if key in recorded and not fits(key))
    if changed:
        what = ", ".join(f"{key} {recorded[key]} (now {current[key]})" for key in changed)
        raise PTGMError(f"[{name}] {directory} {verb} {what}, which has since been rebuilt. Redo this stage with "
                        f"`{rerun_command(name, config)}` (and the stages after it).")


def rerun_command(name: str, config: Any) -> str:
    """The `ptgm` command line that redoes a stage from scratch with ``config``'s settings (``name``'s first word
    is the command)."""
    from ptgm.cli import config_arguments  # the inverse of the parser; imports argparse only

    try:
        flags = config_arguments(dataclasses.replace(config, force=True, resume=False))
    except (ValueError, TypeError):  # a setting no flag can give: name the directory at least
        flags = ["--run-dir", str(config.run_dir), "--force"]
    if "--run-dir" not in flags:
        flags = ["--run-dir", str(config.run_dir), *flags]
    return " ".join(["ptgm", name.split()[0], *flags])


# -- worker processes ------------------------------------------------------------------------------
def available_cores() -> int:
    """The cores this process may run on (its affinity, e.g. under ``taskset`` or a batch scheduler)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def exit_with_parent(parent_pid: int) -> None:
    """Worker-process initializer: the worker ends itself within a second of its parent being gone (a parent
    killed with -9 cannot stop it), and leaves Ctrl-C to its parent, which stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def worker_pool(workers: int, max_tasks_per_child: int | None = None):
    """A process pool (fresh ``spawn`` interpreters) whose workers never outlive the command: on an error or
    Ctrl-C they are terminated rather than waited for, and each exits by itself if the command is killed."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=exit_with_parent,
                               initargs=(os.getpid(),), max_tasks_per_child=max_tasks_per_child)
    try:
        yield pool
    except BaseException:
        # The executor has no public way to stop running tasks; its worker processes are there to terminate.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
        raise
    pool.shutdown(wait=True)


def invoked_command(name: str) -> str:
    """The `ptgm` command line this process runs, for a results file to name (``ptgm NAME`` when it was called
    from Python rather than from the command line)."""
    argv = " ".join(sys.argv[1:]) if Path(sys.argv[0]).name in ("ptgm", "cli.py") else ""
    return f"ptgm {argv or name}"
