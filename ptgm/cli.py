"""The `ptgm` command: one subcommand per pipeline stage, plus `demo`, `bench`, `compare`.

Each subcommand's flags are generated from its settings dataclass (:mod:`ptgm.settings`), so the dataclass is
the single, documented source of every setting. A subcommand's module is imported only when it runs, so
``ptgm --help`` and ``ptgm CMD --help`` print at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import typing

from ptgm.utils import PTGMError, log_to_stdout

#: name → (one line of help, settings class in ptgm.settings, "module:function" that runs it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("run every stage at small scale and compare PTGM with the flat baseline", "DemoConfig",
             "ptgm.demo:demo"),
    "generate": ("record task-agnostic play of the scripted player as a Minari dataset", "GenerateConfig",
                 "ptgm.data.generate:generate"),
    "pretrain": ("train the goal-conditioned low-level policy (BC + hindsight relabeling)", "PretrainConfig",
                 "ptgm.lowlevel.train:pretrain"),
    "cluster": ("K-means the dataset's goals into N discrete goals", "ClusterConfig",
                "ptgm.clustering.codebook:cluster"),
    "prior": ("train the goal prior π_p(goal | s)", "PriorConfig", "ptgm.prior.train:train_prior"),
    "spirl": ("SPiRL baseline: train the skill VAE and skill prior p(z | s) (continuous actions)", "SpirlConfig",
              "ptgm.baselines.spirl:train_spirl"),
    "train": ("downstream RL on a task: ptgm and its ablations, spirl, or flat ppo / sac", "TrainConfig",
              "ptgm.train:train"),
    "evaluate": ("evaluate a trained downstream policy (and record a video of it)", "EvaluateConfig",
                 "ptgm.evaluate:evaluate"),
    "report": ("which goals a trained high-level policy picks, as pictures", "ReportConfig", "ptgm.report:report"),
    "bench": ("every (task, method, seed) side by side: curves, summary table, plots", "BenchConfig",
              "ptgm.bench:bench"),
    "tune": ("the same tuning budget for every method: each one's configurations on tuning seeds, one chosen by a "
             "fixed rule (`ptgm bench --tuned` trains with it)", "TuneConfig", "ptgm.bench.tune:tune"),
    "compare": ("benchmarks' results folders side by side: the cluster-count and k sweeps", "CompareConfig",
                "ptgm.compare:compare"),
}


def _choices(name: str | tuple | None) -> list[str] | None:
    """The values a field accepts: the registered domains or methods (listed without importing them)."""
    if name == "domains":
        from ptgm.domains import domain_names

        return domain_names()
    if name == "methods":
        from ptgm.methods import method_names

        return method_names()
    return list(name) if name else None


def _add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]  # the first names the field
        kind = hints[f.name]
        # `X | None`: the flag was not given (None; the domain's or method's default decides later).
        inner = [t for t in typing.get_args(kind) if t is not type(None)] if typing.get_origin(kind) in (
            typing.Union, getattr(__import__("types"), "UnionType")) else [kind]
        kind = inner[0]
        default = _field_default(f)
        help_text = f.metadata.get("help", "") + ("" if default is None else f" (default: {default})")
        choices = _choices(f.metadata.get("choices"))
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(kind) is tuple:
            parser.add_argument(*flags, type=typing.get_args(kind)[0], nargs="+", default=default, help=help_text,
                                choices=choices)
        else:
            parser.add_argument(*flags, type=kind, default=default, help=help_text, choices=choices)


def _field_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def config_arguments(config) -> list[str]:
    """The command-line flags that give ``config`` (those that differ from the defaults), e.g. for a results
    file to say which command made it; the inverse of the parser `_add_dataclass_arguments` builds."""
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


def build_parser() -> argparse.ArgumentParser:
    """The `ptgm` parser with every subcommand (imports the settings only)."""
    import ptgm.settings as settings

    parser = argparse.ArgumentParser(
        prog="ptgm",
        description="Pre-Trained Goal-based Models for sample-efficient RL. Run `ptgm demo` for the whole pipeline.",
    )
    sub = parser.add_subparsers(dest="command")
    for name, (help_text, cls_name, _) in COMMANDS.items():
        cls = getattr(settings, cls_name)
        p = sub.add_parser(name, help=help_text, description=(cls.__doc__ or help_text).strip())
        _add_dataclass_arguments(p, cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    import ptgm.settings as settings

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"])
    command = args.command
    _, cls_name, target = COMMANDS[command]
    # Library code logs through `logging`; the command line shows its messages as plain lines.
    log_to_stdout()
    try:
        module, _, function = target.partition(":")
        config = _config_from_args(getattr(settings, cls_name), args)
        getattr(importlib.import_module(module), function)(config)
    except PTGMError as exc:
        print(f"ptgm {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nptgm {command}: interrupted; rerun the same command with --resume to continue.", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # a stage run under torchrun
            from ptgm.distributed import shutdown

            shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
