"""Ray, an optional extra (``pip install 'ptgm[ray]'``): play shards and benchmark runs as tasks on a cluster.

``ptgm generate --ray-address ADDRESS`` plays each shard as a Ray task and writes what the tasks return on the
machine that runs the command (no shared filesystem needed); ``ptgm bench --ray-address ADDRESS`` runs each
(task, method, seed) as a Ray task that trains in the benchmark's run directory, which every node must see
(a shared filesystem, as for any cluster job). A task whose node is lost is retried by Ray and resumes from
its last checkpoint; finished runs stay finished. Without an address nothing here is imported.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

from ptgm.utils import PTGMError

logger = logging.getLogger(__name__)

#: Seconds to wait for a cluster's address to answer before saying it does not.
CONNECT_TIMEOUT = 10


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise PTGMError("--ray-address needs Ray: pip install 'ptgm[ray]' (or pip install ray).") from exc
    return ray


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of its head, ``auto``, or ``ray://HOST:PORT``), with a
    clear error when nothing answers there."""
    ray = _ray()
    host_port = address.removeprefix("ray://")
    if address != "auto":
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise PTGMError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto.")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise PTGMError(f"No Ray cluster answers at {address} ({exc}). Start one (`ray start --head` on the head "
                            "node) and give its address, or leave --ray-address unset to run on this machine.") from exc
    if ray.is_initialized():  # joined before in this process (the Python API, tests)
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError and others for a cluster it cannot join
        raise PTGMError(f"Could not join the Ray cluster at {address}: {exc}") from exc
    resources = ray.cluster_resources()
    logger.info(f"[ray] joined {address}: {len(ray.nodes())} node(s), {resources.get('CPU', 0):.0f} CPUs, "
                f"{resources.get('GPU', 0):.0f} GPUs")


def submit(function: Callable, args: tuple, num_cpus: float = 1, num_gpus: float = 0,
           fresh_process: bool = True) -> Any:
    """``function(*args)`` as a Ray task with these resources, retried where its node is lost;
    ``fresh_process``: in a worker process of its own (a training run, as the local pools do), else in a reused
    one (short tasks such as play shards, which would otherwise pay Python's and ptgm's start-up each)."""
    ray = _ray()
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_calls=1 if fresh_process else 0,
                        max_retries=3)(function)
    return remote.remote(*args)


def _finished(tasks) -> Iterator[Any]:
    """Each task as it finishes; stopped early (an error, Ctrl-C), it cancels the tasks still pending, so nothing
    keeps running for the command."""
    ray = _ray()
    pending = list(tasks)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield done[0]
    finally:
        for task in pending:
            ray.cancel(task, force=True)


def as_completed(tasks: dict | list) -> Iterator[tuple[Any, Any]]:
    """``(task, result)`` of each submitted task as it finishes; a task that failed for good raises its error."""
    for task in _finished(tasks):
        yield task, _ray().get(task)


def results(tasks: dict) -> Iterator[tuple[Any, Any]]:
    """``(tasks[task], result)`` as each finishes, a task that failed for good (e.g. its node lost more often
    than Ray retries) giving ``1``, as a failed run does; the others go on."""
    ray = _ray()
    for task in _finished(tasks):
        try:
            yield tasks[task], ray.get(task)
        except ray.exceptions.RayError as exc:
            logger.warning(f"[ray] {tasks[task]} failed on the cluster: {type(exc).__name__}")
            yield tasks[task], 1
