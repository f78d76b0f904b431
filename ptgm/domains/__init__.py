"""Domain plug-ins: each one is an environment family behind :class:`Domain`."""

from __future__ import annotations

from typing import Callable

from ptgm.domains.base import Domain
from ptgm.utils import PTGMError

_REGISTRY: dict[str, Callable[[], Domain]] = {}


def register_domain(name: str, factory: Callable[[], Domain]) -> None:
    """Make ``ptgm --domain NAME`` build its domain with ``factory()``."""
    _REGISTRY[name] = factory


def get_domain(name: str) -> Domain:
    """The domain called ``name``; a clear error names the known ones."""
    if name not in _REGISTRY:
        raise PTGMError(f"Unknown domain {name!r}. Known domains: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]()


def domain_names() -> list[str]:
    return sorted(_REGISTRY)


def _crafter() -> Domain:
    from ptgm.domains.crafter import CrafterDomain

    return CrafterDomain()


def _kitchen() -> Domain:
    from ptgm.domains.kitchen import KitchenDomain

    return KitchenDomain()


register_domain("crafter", _crafter)
register_domain("kitchen", _kitchen)

__all__ = ["Domain", "register_domain", "get_domain", "domain_names"]
