"""ptgm: Pre-Trained Goal-based Models (PTGM, ICLR 2024) for sample-efficient reinforcement learning.

The Python API, in Stable-Baselines3's conventions::

    import gymnasium as gym, ptgm
    pieces = ptgm.Pretrained.load("runs/crafter")                 # or ptgm.Pretrained.build(...)
    agent = ptgm.PTGM(lambda: gym.make("ptgm/Crafter-v0", task="collect_stone"), pieces, k=10, kl_coef=0.01)
    agent.learn(total_env_steps=100_000)
    agent.save("stone.zip")
    agent = ptgm.PTGM.load("stone.zip")
    action, info = agent.predict(obs)

Importing ptgm registers the Gymnasium environments ``ptgm/Crafter-v0`` and ``ptgm/Kitchen-v0``; the rest is
imported when first used, so the command line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.2.0"

#: Public name → module that defines it (imported on first use).
_API = {
    "Agent": "ptgm.agent", "PTGM": "ptgm.agent", "Pretrained": "ptgm.hrl.pretrained",
    "Method": "ptgm.methods.base", "get_method": "ptgm.methods", "method_names": "ptgm.methods",
    "register_method": "ptgm.methods", "Domain": "ptgm.domains.base", "get_domain": "ptgm.domains",
    "domain_names": "ptgm.domains", "register_domain": "ptgm.domains", "PTGMError": "ptgm.utils",
    "GenerateConfig": "ptgm.settings", "PretrainConfig": "ptgm.settings", "ClusterConfig": "ptgm.settings",
    "PriorConfig": "ptgm.settings", "SpirlConfig": "ptgm.settings", "TrainConfig": "ptgm.settings",
    "EvaluateConfig": "ptgm.settings", "BenchConfig": "ptgm.settings",
}

if TYPE_CHECKING:
    from ptgm.agent import PTGM, Agent
    from ptgm.domains import domain_names, get_domain, register_domain
    from ptgm.domains.base import Domain
    from ptgm.hrl.pretrained import Pretrained
    from ptgm.methods import get_method, method_names, register_method
    from ptgm.methods.base import Method
    from ptgm.settings import (
        BenchConfig,
        ClusterConfig,
        EvaluateConfig,
        GenerateConfig,
        PretrainConfig,
        PriorConfig,
        SpirlConfig,
        TrainConfig,
    )
    from ptgm.utils import PTGMError


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ptgm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))


from ptgm.envs import register_envs  # noqa: E402  (light: gymnasium's registry only)

register_envs()

__all__ = [
    "Agent",
    "BenchConfig",
    "ClusterConfig",
    "Domain",
    "EvaluateConfig",
    "GenerateConfig",
    "Method",
    "PTGM",
    "PTGMError",
    "PretrainConfig",
    "Pretrained",
    "PriorConfig",
    "SpirlConfig",
    "TrainConfig",
    "domain_names",
    "get_domain",
    "get_method",
    "method_names",
    "register_domain",
    "register_method",
]
