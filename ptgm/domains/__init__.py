"""Domain plug-ins: each one is an environment family behind :class:`~ptgm.domains.base.Domain`.

Built-in: ``crafter`` and ``kitchen``. A package of one's own adds a domain through the entry-point group
``ptgm.domains`` (``NAME = "package.module:DomainClass"``), which makes ``--domain NAME`` work in every command
with no edit to ptgm; a script can also call :func:`register_domain`. Names are listed without importing any
domain, so ``ptgm --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ptgm.utils import PTGMError

if TYPE_CHECKING:
    from ptgm.domains.base import Domain

ENTRY_POINT_GROUP = "ptgm.domains"
_BUILT_IN = {"crafter": "ptgm.domains.crafter:CrafterDomain", "kitchen": "ptgm.domains.kitchen:KitchenDomain",
             "minari": "ptgm.domains.minari:MinariDomain"}
_REGISTRY: dict[str, Callable[[], "Domain"]] = {}


_INSTANCES: dict[tuple, "Domain"] = {}


def register_domain(name: str, factory: Callable[..., "Domain"]) -> None:
    """Make ``--domain NAME`` build its domain with ``factory()`` in this process."""
    _REGISTRY[name] = factory
    for key in [key for key in _INSTANCES if key[0] == name]:
        del _INSTANCES[key]


def _targets() -> dict[str, str]:
    """Domain name → ``module:attribute``, built-in ones and those of installed plug-in packages."""
    return {**_BUILT_IN, **{ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}}


def domain_names() -> list[str]:
    """Every domain `--domain` accepts."""
    return sorted(set(_targets()) | set(_REGISTRY))


def _factory(name: str) -> Callable[..., "Domain"]:
    """What builds domain ``name`` (its class, for plug-ins), imported on first use."""
    if name not in _REGISTRY:
        targets = _targets()
        if name not in targets:
            raise PTGMError(f"Unknown domain {name!r}. Known domains: {', '.join(domain_names())}.")
        import importlib

        module, _, attribute = targets[name].partition(":")
        _REGISTRY[name] = getattr(importlib.import_module(module), attribute)
    return _REGISTRY[name]


def get_domain(name: str, **options) -> "Domain":
    """The domain called ``name``, built from those of ``options`` it takes (its class's ``options``, e.g. the
    minari domain's ``dataset``; unset ones are left out); a clear error names the known domains.

    Domains are built once per process and set of options.
    """
    factory = _factory(name)
    accepted = getattr(factory, "options", ())
    given = {key: value for key, value in options.items() if key in accepted and value not in (None, (), "")}
    key = (name, tuple(sorted(given.items())))
    if key not in _INSTANCES:
        _INSTANCES[key] = factory(**given)
    return _INSTANCES[key]


def domain_of(settings) -> "Domain":
    """The domain a command's settings name (``domain``), built from their ``dataset`` and ``goal_keys``."""
    goal_keys = tuple(getattr(settings, "goal_keys", None) or ())
    dataset = getattr(settings, "dataset", None)
    if "dataset" in getattr(_factory(settings.domain), "required_options", ()) and not dataset:
        raise PTGMError(f"--domain {settings.domain} needs --dataset ID_OR_PATH: the Minari dataset whose "
                        "environment and play it uses.")
    domain = get_domain(settings.domain, dataset=dataset, goal_keys=goal_keys)
    if goal_keys and "goal_keys" not in getattr(type(domain), "options", ()):
        raise PTGMError(f"--goal-keys chooses goal features of a dataset's dictionary observations for --domain "
                        f"minari; the {settings.domain} domain has its own goal features. Leave --goal-keys unset.")
    return domain


def __getattr__(name: str):
    if name == "Domain":  # imported lazily: it needs gymnasium
        from ptgm.domains.base import Domain

        return Domain
    raise AttributeError(name)


__all__ = ["Domain", "ENTRY_POINT_GROUP", "register_domain", "get_domain", "domain_names", "domain_of"]
