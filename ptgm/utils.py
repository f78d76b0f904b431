"""Small shared pieces: run directories, atomic writes, metrics logging, seeding, NaN checks."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import random
import sys
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


def load_checkpoint(path: Path, what: str, fix: str) -> dict:
    """``torch.load`` with a clear message for a missing or corrupt file."""
    path = Path(path)
    if not path.exists():
        raise PTGMError(f"No {what} at {path}. {fix}")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a truncated/corrupt file
        raise PTGMError(f"The {what} at {path} is corrupt or unreadable ({exc}). {fix}") from exc


def check_finite(value: float, what: str, step: int) -> None:
    if not np.isfinite(value):
        raise PTGMError(
            f"{what} became {value} at step {step}. Training diverged: lower the learning rate "
            "(--learning-rate), check the dataset for NaNs, or resume from the last good checkpoint with --resume."
        )


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


def mark_stage_done(directory: Path, config: Any, summary: dict) -> None:
    atomic_write_json(Path(directory) / "DONE.json", {"config": config_dict(config), "summary": summary})


def prepare_stage(directory: Path, config: Any, force: bool, resume: bool, name: str) -> dict | None:
    """Returns the previous summary when the stage is finished and may be reused.

    Otherwise it makes the directory, records the config and returns None. A stage that
    was started but not finished needs ``--resume`` (continue) or ``--force`` (start over),
    so that work is never silently thrown away.
    """
    directory = Path(directory)
    done = stage_done(directory)
    if done is not None and "domain" in done["config"] and done["config"]["domain"] != getattr(config, "domain", None):
        raise PTGMError(
            f"[{name}] {directory} holds a {done['config']['domain']} run, not {config.domain}. "
            "Use another --run-dir (the default is runs/DOMAIN)."
        )
    if done is not None and not force:
        new, old = config_dict(config), recorded_settings(done["config"], config)
        # Where a stage lives is no setting of it: a run directory written once relative and once
        # absolute, moved, or whose stages are links to another's (--share-from) holds the same stage.
        changed = sorted(k for k in new if k != "run_dir" and old.get(k) != new[k])
        if changed:
            logger.info(f"[{name}] note: reusing the finished stage in {directory}, whose settings differ in "
                  f"{', '.join(changed)}; pass --force to redo it with the new settings.")
        else:
            logger.info(f"[{name}] already finished in {directory}; reusing it (pass --force to redo).")
        return done["summary"]
    if force and directory.exists():
        (directory / "DONE.json").unlink(missing_ok=True)
    elif not resume and directory.exists() and any(directory.glob("checkpoint*")):
        raise PTGMError(
            f"[{name}] {directory} holds an unfinished run. Pass --resume to continue it or --force to start over."
        )
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / "config.json", config_dict(config))
    return None


def invoked_command(name: str) -> str:
    """The `ptgm` command line this process runs, for a results file to name (``ptgm NAME`` when it was called
    from Python rather than from the command line)."""
    argv = " ".join(sys.argv[1:]) if Path(sys.argv[0]).name in ("ptgm", "cli.py") else ""
    return f"ptgm {argv or name}"
