"""The `ptgm` command: one subcommand per pipeline stage, plus `demo`.

Each subcommand's flags are generated from its hyper-parameter dataclass, so the
dataclass is the single, documented source of every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Callable

from ptgm.utils import PTGMError


def _add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]  # the first names the field
        kind = hints[f.name]
        default = _field_default(f)
        help_text = f.metadata.get("help", "") + f" (default: {default})"
        if kind is bool or kind == (bool | None):  # None: the flag was not given (a default decides later)
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(kind) is tuple:
            inner = typing.get_args(kind)[0]
            parser.add_argument(*flags, type=inner, nargs="+", default=default, help=help_text)
        else:  # `float | None` and the like: parse as the non-None type; None means "not given"
            inner = [t for t in typing.get_args(kind) if t is not type(None)] or [kind]
            parser.add_argument(*flags, type=inner[0], default=default, help=help_text)


def _field_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def config_arguments(config) -> list[str]:
    """The command-line flags that give ``config`` (those that differ from the defaults), for a subprocess.

    The inverse of the parser `_add_dataclass_arguments` builds, so a caller that launches a subcommand
    spells its settings once, as the dataclass.
    """
    args: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value == _field_default(f):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple) and value:
            args += [flag, *map(str, value)]
        elif value is None or isinstance(value, tuple):  # no flag says "unset" or "empty" once a default is set
            raise ValueError(f"{f.name}={value!r} cannot be given on the command line (its default is "
                             f"{_field_default(f)!r})")
        else:
            args += [flag, str(value)]
    return args


def _config_from_args(cls: type, args: argparse.Namespace):
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def _commands() -> dict[str, tuple[str, type, Callable]]:
    from ptgm.baselines.spirl import SpirlConfig, train_spirl
    from ptgm.bench import BenchConfig, bench
    from ptgm.clustering.codebook import ClusterConfig, cluster
    from ptgm.compare import CompareConfig, compare
    from ptgm.data.generate import GenerateConfig, generate
    from ptgm.demo import DemoConfig, demo
    from ptgm.evaluate import EvaluateConfig, evaluate
    from ptgm.hrl.train import TrainConfig, train
    from ptgm.lowlevel.train import PretrainConfig, pretrain
    from ptgm.prior.train import PriorConfig, train_prior
    from ptgm.report import ReportConfig, report

    return {
        "demo": ("run every stage at small scale and compare PTGM with the flat baseline", DemoConfig, demo),
        "generate": ("record task-agnostic play of the scripted player as a Minari dataset", GenerateConfig, generate),
        "pretrain": ("train the goal-conditioned low-level policy (BC + hindsight relabeling)", PretrainConfig, pretrain),
        "cluster": ("K-means the dataset's goals into N discrete goals", ClusterConfig, cluster),
        "prior": ("train the goal prior π_p(goal | s)", PriorConfig, train_prior),
        "spirl": ("SPiRL baseline: train the skill VAE and skill prior p(z | s) (continuous actions)", SpirlConfig,
                  train_spirl),
        "train": ("downstream RL on a task: ptgm and its ablations, spirl, or flat ppo / sac", TrainConfig, train),
        "evaluate": ("evaluate a trained downstream policy", EvaluateConfig, evaluate),
        "report": ("which goals a trained high-level policy picks, as pictures", ReportConfig, report),
        "bench": ("every (task, method, seed) side by side: curves, summary table, plots", BenchConfig, bench),
        "compare": ("benchmarks' results folders side by side: the cluster-count and k sweeps", CompareConfig,
                    compare),
    }


def main(argv: list[str] | None = None) -> int:
    commands = _commands()
    parser = argparse.ArgumentParser(
        prog="ptgm",
        description="Pre-Trained Goal-based Models for sample-efficient RL. Run `ptgm demo` for the whole pipeline.",
    )
    sub = parser.add_subparsers(dest="command")
    for name, (help_text, cls, _) in commands.items():
        p = sub.add_parser(name, help=help_text, description=(cls.__doc__ or help_text).strip())
        _add_dataclass_arguments(p, cls)
    args = parser.parse_args(argv)
    command = args.command or "demo"
    _, cls, fn = commands[command]
    if args.command is None:
        args = parser.parse_args(["demo"])
    try:
        fn(_config_from_args(cls, args))
    except PTGMError as exc:
        print(f"ptgm {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nptgm {command}: interrupted; rerun the same command with --resume to continue.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
