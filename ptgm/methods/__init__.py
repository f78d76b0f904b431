"""Method plug-ins: each downstream method is one module that defines one :class:`~ptgm.methods.base.Method`.

A module ``ptgm/methods/NAME.py`` defining ``METHOD`` is the method ``NAME`` (underscores read as dashes:
``ptgm_sac.py`` is ``ptgm-sac``), so adding a method is adding one file. A package of one's own adds methods
through the entry-point group ``ptgm.methods`` (``name = "package.module:METHOD"``). Names are listed without
importing any method, so ``ptgm train --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ptgm.utils import PTGMError

if TYPE_CHECKING:
    from ptgm.methods.base import Method

ENTRY_POINT_GROUP = "ptgm.methods"
_REGISTERED: dict[str, "Method"] = {}


def _module_names() -> dict[str, str]:
    """Method name → module, for the built-in modules of this package and the entry points of other packages."""
    found = {info.name.replace("_", "-"): f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__)
             if info.name != "base"}
    found.update({ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
    return found


def method_names() -> list[str]:
    """Every method that `ptgm train --method` accepts."""
    return sorted(set(_module_names()) | set(_REGISTERED))


def register_method(method: "Method") -> None:
    """Make ``method`` available under ``method.name`` in this process (for methods defined in a script)."""
    _REGISTERED[method.name] = method


def get_method(name: str) -> "Method":
    """The method called ``name``; a clear error lists the known ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    modules = _module_names()
    if name not in modules:
        raise PTGMError(f"Unknown method {name!r}; choose one of {', '.join(method_names())}.")
    target = modules[name]
    module_name, _, attribute = target.partition(":")
    method = getattr(importlib.import_module(module_name), attribute or "METHOD")
    if method.name != name:
        raise PTGMError(f"{target} defines method {method.name!r}, not {name!r}: name its module (or entry point) "
                        "after the method.")
    _REGISTERED[name] = method
    return method


__all__ = ["ENTRY_POINT_GROUP", "get_method", "method_names", "register_method"]
