"""Network building blocks shared by the low-level policy, the goal prior and the high-level policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def observation_scale(space: gym.spaces.Box) -> np.ndarray:
    """Per-entry divisor that maps a bounded observation into [0, 1] (1 where unbounded).

    Crafter's symbolic observation is small integers with a per-entry ``high``; every
    network divides by this, so the same scaling is used in pre-training and in RL.
    """
    high = np.asarray(space.high, np.float64).reshape(-1)
    finite = np.isfinite(high) & (high > 0)
    scale = np.ones_like(high, np.float32)
    scale[finite] = high[finite]
    return scale.astype(np.float32)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class ScaledInput(nn.Module):
    """Divides raw observations by a fixed per-entry scale (kept in the state dict)."""

    def __init__(self, scale: np.ndarray):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float() / self.scale


class SavableModule(nn.Module):
    """A module saved with the arguments that rebuild it (``init_kwargs``) and a ``kind`` tag."""

    #: Checkpoint tag, what the model is called in messages, and the command that makes it.
    kind: str = ""
    what: str = ""
    made_by: str = ""
    init_kwargs: dict

    def save(self, path, **extra) -> None:
        from ptgm.utils import atomic_torch_save

        atomic_torch_save({"kind": self.kind, "init_kwargs": self.init_kwargs, "state_dict": self.state_dict(),
                           **extra}, path)

    @property
    def fingerprint(self) -> str:
        """What this model is (its kind and weights): what the pieces trained with it record."""
        from ptgm.utils import fingerprint_of

        return fingerprint_of(self.kind, *self.state_dict().keys(), *self.state_dict().values())

    @classmethod
    def load(cls, path):
        """``(model in eval mode, checkpoint dict)``; clear errors for a missing, corrupt or wrong file."""
        from pathlib import Path

        from ptgm.utils import PTGMError, load_checkpoint

        # The command that really rebuilds it: a finished stage is reused unless forced.
        fix = f"Rebuild it with `{cls.made_by} --run-dir {Path(path).parent.parent} --force`."
        ckpt = load_checkpoint(path, cls.what, fix)
        if not isinstance(ckpt, dict) or ckpt.get("kind") != cls.kind:
            kind = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise PTGMError(f"{path} is not a {cls.what} checkpoint (it is {kind!r}). {fix}")
        try:
            model = cls(**ckpt["init_kwargs"])
            model.load_state_dict(ckpt["state_dict"])
        except Exception as exc:  # weights of another shape or missing entries: a damaged or foreign file
            raise PTGMError(f"The {cls.what} at {path} does not fit its own settings ({exc}). {fix}") from exc
        model.eval()
        return model, ckpt
