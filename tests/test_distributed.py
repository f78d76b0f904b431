"""Devices and pre-training under torchrun (DDP, gloo on the CPU): real processes, the tiny run's data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ptgm import distributed
from ptgm.hrl.pretrained import Pretrained

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ptgm.cli"]
SMALL = ["--device", "cpu", "--steps", "100", "--eval-every", "50", "--checkpoint-every", "50", "--batch-size", "64"]


def torchrun(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_pre_training_under_torchrun_writes_once_and_the_pieces_load(tiny_run, tmp_path):
    run = tmp_path / "run"
    for stage in ("data", "codebook"):
        shutil.copytree(tiny_run / stage, run / stage)
    done = torchrun("pretrain", "--run-dir", str(run), *SMALL, "--hidden", "32", "--goal-trials", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    done = torchrun("prior", "--run-dir", str(run), *SMALL, "--hidden", "32", "32")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for stage in ("lowlevel", "prior"):  # rank 0 alone logs: each validation step once
        steps = [line.split(",")[0] for line in (run / stage / "metrics.csv").read_text().splitlines()[1:]]
        assert steps == ["50", "100"]
        assert not list((run / stage).glob("checkpoint*"))
    pieces = Pretrained.load(run)
    assert pieces.n_goals == 8
    # A finished stage under torchrun is reused, as in one process.
    again = torchrun("prior", "--run-dir", str(run), *SMALL, "--hidden", "32", "32", "--resume")
    assert again.returncode == 0 and "reusing it" in again.stdout


def test_a_torchrun_launch_without_a_dataset_stops_every_process_with_the_error(tmp_path):
    done = torchrun("pretrain", "--run-dir", str(tmp_path / "empty"), *SMALL, timeout=120)
    assert done.returncode != 0
    assert "ptgm pretrain: error: No dataset in" in done.stderr
    assert not (tmp_path / "empty" / "lowlevel" / "DONE.json").exists()


def test_each_process_draws_its_own_rows_and_share_of_the_batch(monkeypatch):
    rows = np.arange(10)
    assert distributed.world_size() == 1 and (distributed.rank_rows(rows) == rows).all()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert list(distributed.rank_rows(rows)) == [1, 3, 5, 7, 9] and not distributed.is_main()
    assert distributed.share_of(512) == 256
    with pytest.raises(distributed.PTGMError, match="multiple of 2"):
        distributed.share_of(511)


def test_auto_is_the_cpu_where_there_is_no_gpu():
    import torch

    assert distributed.resolve_device("cpu").type == "cpu"
    assert distributed.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_torchrun_streams_a_dataset_larger_than_the_memory_each_process_keeps_its_own_chunks(tiny_run, tmp_path):
    run = tmp_path / "run"
    for stage in ("data", "codebook"):
        shutil.copytree(tiny_run / stage, run / stage)
    for stage, extra in (("pretrain", ["--hidden", "32", "--goal-trials", "2"]), ("prior", ["--hidden", "32", "32"])):
        done = torchrun(stage, "--run-dir", str(run), *SMALL, *extra, "--memory-rows", "800")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    # The pieces fit together: the prior's check of the codebook's dataset passed, and they load as a whole.
    assert Pretrained.load(run).n_goals == 8
