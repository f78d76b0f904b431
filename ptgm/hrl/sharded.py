"""Environments split over worker processes, each stepping its share as one batched VecEnv.

SB3's ``SubprocVecEnv`` gives every environment a process of its own; for PTGM each would then run the frozen
low-level policy on one observation at a time, and pay a round trip per high-level step per environment. Here
``n`` environments are split over ``workers`` processes (one per core), each running its share as one VecEnv
(a :class:`~ptgm.hrl.wrapper.GoalSelectionVecEnv`: one batched low-level forward pass per env step): parallel
across cores, batched within each, one round trip per worker per high-level step.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnv

#: ``make_shard(first, count) -> VecEnv``: the VecEnv of environments ``first .. first + count - 1`` (picklable).
MakeShard = Callable[[int, int], VecEnv]


def shard_sizes(n_envs: int, workers: int) -> list[int]:
    """How many of ``n_envs`` environments each of ``workers`` processes steps (as even as it goes, earlier ones
    first)."""
    workers = max(1, min(workers, n_envs))
    return [n_envs // workers + (i < n_envs % workers) for i in range(workers)]


def _worker(remote, parent_remote, make_shard: CloudpickleWrapper, first: int, count: int, parent_pid: int) -> None:
    from ptgm.utils import exit_with_parent

    exit_with_parent(parent_pid)
    parent_remote.close()
    vec_env: VecEnv = make_shard.var(first, count)
    try:
        while True:
            command, data = remote.recv()
            if command == "close":
                break
            try:
                remote.send(("ok", _run(vec_env, command, data)))
            except Exception as exc:  # the parent raises it (ShardedVecEnv._receive)
                remote.send(("error", exc))
    except (EOFError, KeyboardInterrupt):  # the parent is gone or stopping
        pass
    finally:
        vec_env.close()
        remote.close()


def _run(vec_env: VecEnv, command: str, data):
    if command == "step":
        vec_env.step_async(data)
        return vec_env.step_wait()
    if command == "reset":
        seed, options = data
        if seed is not None:
            vec_env.seed(seed)
        if options is not None:
            vec_env.set_options(options)
        return vec_env.reset(), vec_env.reset_infos
    if command == "spaces":
        return vec_env.observation_space, vec_env.action_space
    if command == "get_attr":
        return vec_env.get_attr(*data)
    if command == "set_attr":
        vec_env.set_attr(*data)
        return []  # (an answer per environment, like the others: none)
    if command == "env_method":
        name, args, kwargs, indices = data
        return vec_env.env_method(name, *args, indices=indices, **kwargs)
    if command == "is_wrapped":
        return vec_env.env_is_wrapped(*data)
    raise NotImplementedError(f"ShardedVecEnv worker: unknown command {command!r}")


class ShardedVecEnv(VecEnv):
    """``n_envs`` environments in ``workers`` processes, each stepping its share as one VecEnv made by
    ``make_shard(first, count)`` in that process (it loads whatever the shard needs, e.g. the frozen pieces).

    Behaves as the VecEnv of all ``n_envs`` in order: ``seed(s)`` gives environment ``i`` the seed ``s + i``, as
    the unsharded VecEnv would; observations, rewards, dones and infos come back concatenated in order.

    Args:
        make_shard: picklable ``(first, count) -> VecEnv``.
        n_envs: environments in all.
        workers: processes (at most ``n_envs``).
    """

    def __init__(self, make_shard: MakeShard, n_envs: int, workers: int):
        self.sizes = shard_sizes(n_envs, workers)
        self.starts = np.cumsum([0, *self.sizes[:-1]]).tolist()
        context = mp.get_context("spawn")  # fresh interpreters: no fork of a process holding torch threads
        self.remotes, self.processes = [], []
        wrapped = CloudpickleWrapper(make_shard)
        for first, count in zip(self.starts, self.sizes):
            remote, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, remote, wrapped, first, count, os.getpid()),
                                      daemon=True)
            process.start()
            child.close()
            self.remotes.append(remote)
            self.processes.append(process)
        self.closed = False
        self.remotes[0].send(("spaces", None))
        observation_space, action_space = self._receive(0)
        super().__init__(n_envs, observation_space, action_space)

    def _receive(self, worker: int):
        """Worker ``worker``'s answer; what it raised is raised here."""
        try:
            status, value = self.remotes[worker].recv()
        except EOFError:
            raise RuntimeError(f"ShardedVecEnv: the worker process of environments {self.starts[worker]}.."
                               f"{self.starts[worker] + self.sizes[worker] - 1} ended unexpectedly") from None
        if status == "error":
            raise value
        return value

    def _receive_all(self) -> list:
        return [self._receive(worker) for worker in range(len(self.remotes))]

    def _per_shard(self, command: str, indices, data: Callable[[list[int]], Any]) -> list[Any]:
        """``command`` with ``data(local indices)`` to each worker holding some of the global ``indices`` (all
        environments for None); their answers, lists per environment, joined in order."""
        chosen = self._get_indices(indices)
        answers = []
        for worker, (first, count) in enumerate(zip(self.starts, self.sizes)):
            local = [i - first for i in chosen if first <= i < first + count]
            if local:
                self.remotes[worker].send((command, data(local)))
                answers += self._receive(worker)
        return answers

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        for remote, first, count in zip(self.remotes, self.starts, self.sizes):
            remote.send(("step", actions[first:first + count]))

    def step_wait(self):
        observations, rewards, dones, infos = zip(*self._receive_all())
        return (np.concatenate(observations), np.concatenate(rewards), np.concatenate(dones),
                [info for shard in infos for info in shard])

    def reset(self):
        for remote, first, count in zip(self.remotes, self.starts, self.sizes):
            # Environment i's seed is seed + i (VecEnv.seed): the shard's first one's seed seeds the shard alike.
            options = list(self._options[first:first + count]) if any(self._options) else None
            remote.send(("reset", (self._seeds[first], options)))
        results = self._receive_all()
        self.reset_infos = [info for _, infos in results for info in infos]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate([observations for observations, _ in results])

    def close(self) -> None:
        if self.closed:
            return
        for remote in self.remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():  # (a worker stuck in its environment)
                process.terminate()
                process.join(5)
        self.closed = True

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return self._per_shard("get_attr", indices, lambda local: (attr_name, local))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        self._per_shard("set_attr", indices, lambda local: (attr_name, value, local))

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return self._per_shard("env_method", indices, lambda local: (method_name, method_args, method_kwargs, local))

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return self._per_shard("is_wrapped", indices, lambda local: (wrapper_class, local))

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise NotImplementedError("ShardedVecEnv does not render; record videos with `ptgm evaluate --video`.")
