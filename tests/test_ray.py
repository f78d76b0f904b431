"""Ray: play generation and benchmark runs as tasks on a real local cluster of two worker nodes (one CPU each)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from ptgm.cli import main  # noqa: E402
from ptgm.data.generate import load_run_dataset  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A head node that runs nothing and two worker nodes of one CPU each, started and stopped here."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


def test_generation_on_the_cluster_gives_the_dataset_this_machine_gives(cluster, tmp_path):
    shards = ["--transitions", "2000", "--shard-transitions", "500", "--seed", "3"]
    assert main(["generate", "--run-dir", str(tmp_path / "ray"), *shards, "--ray-address", cluster[0].address]) == 0
    assert main(["generate", "--run-dir", str(tmp_path / "local"), *shards, "--workers", "1"]) == 0
    on_ray, here = load_run_dataset(tmp_path / "ray"), load_run_dataset(tmp_path / "local")
    assert on_ray.fingerprint == here.fingerprint and on_ray.n_transitions >= 2000


def test_a_bench_on_the_cluster_runs_every_job_and_resumes_the_same_way(cluster, tmp_path):
    run, out = tmp_path / "run", tmp_path / "results"
    args = ["bench", "--run-dir", str(run), "--out", str(out), "--methods", "ppo", "--seeds", "2", "--env-steps",
            "256", "--eval-episodes", "1", "--window", "1", "--ray-address", cluster[0].address]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["seed"] for r in summary["runs"]) == [0, 1]
    models = [run / "rl" / "collect_wood" / f"ppo-seed{seed}" / "model.zip" for seed in (0, 1)]
    stamps = [m.stat().st_mtime for m in models]
    assert main(args) == 0  # the same command again: every finished run is reused
    assert [m.stat().st_mtime for m in models] == stamps


def test_a_node_lost_mid_bench_leaves_finished_runs_intact_and_the_rest_resumable(cluster, tmp_path):
    head, nodes = cluster
    run, out = tmp_path / "run", tmp_path / "results"
    args = ["bench", "--run-dir", str(run), "--out", str(out), "--methods", "ppo", "--seeds", "3", "--env-steps",
            "512", "--eval-episodes", "1", "--window", "1", "--ray-address", head.address]
    done = [run / "rl" / "collect_wood" / f"ppo-seed{seed}" / "DONE.json" for seed in range(3)]
    with open(tmp_path / "bench.err", "w") as err:
        bench = subprocess.Popen([sys.executable, "-m", "ptgm.cli", *args], stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 300
            while not any(path.exists() for path in done):
                assert bench.poll() is None and time.monotonic() < deadline, (tmp_path / "bench.err").read_text()
                time.sleep(0.2)
            finished = {path: path.stat().st_mtime for path in done if path.exists()}
            head.remove_node(nodes.pop())  # a worker node lost while the other runs are in flight
            bench.wait(timeout=600)
        finally:
            bench.kill()
    for path, stamp in finished.items():
        assert path.stat().st_mtime == stamp  # finished runs untouched
    nodes.append(head.add_node(num_cpus=1))
    head.wait_for_nodes()
    assert main(args) == 0  # the same command finishes whatever the lost node left
    for path, stamp in finished.items():
        assert path.stat().st_mtime == stamp
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["seed"] for r in summary["runs"]) == [0, 1, 2] and all(path.exists() for path in done)


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "No Ray cluster answers at 127.0.0.1:1"),
    ("nowhere", "is not HOST:PORT"),
])
def test_an_unreachable_cluster_is_a_clear_error(address, message, tmp_path, capsys):
    assert main(["generate", "--run-dir", str(tmp_path / "run"), "--transitions", "100", "--ray-address", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptgm generate: error:") and message in err and "Traceback" not in err
