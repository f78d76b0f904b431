"""The goal prior π_p(goal | s): which of the N cluster goals the data pursues from state s."""

from __future__ import annotations

import numpy as np
import torch

from ptgm.nets import SavableModule, ScaledInput, mlp


class GoalPrior(SavableModule):
    """An MLP classifier over scaled observations.

    Its hidden layers use the same shapes and activation as the high-level PPO actor
    (``hidden``, ReLU), so the RL policy can be initialised from it.
    """

    kind, what, made_by = "prior", "goal prior", "ptgm prior"

    def __init__(self, obs_scale: np.ndarray, n_goals: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.init_kwargs = {"obs_scale": np.asarray(obs_scale), "n_goals": n_goals, "hidden": tuple(hidden)}
        self.scale = ScaledInput(obs_scale)
        self.net = mlp(len(obs_scale), tuple(hidden), n_goals)
        self.n_goals = n_goals

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits from raw observations."""
        return self.net(self.scale(obs))

    def logits_from_scaled(self, scaled_obs: torch.Tensor) -> torch.Tensor:
        """Logits from observations already divided by the scale (what the RL policy sees)."""
        return self.net(scaled_obs)

    def copy_into(self, layers: list[torch.nn.Linear]) -> None:
        """Make an actor start equal to the prior: copy the prior's linear layers into ``layers``, in order.

        The actor must use the prior's hidden widths and ReLU between its layers.
        """
        own = [m for m in self.net if isinstance(m, torch.nn.Linear)]
        shapes = ([tuple(m.weight.shape) for m in own], [tuple(m.weight.shape) for m in layers])
        if shapes[0] != shapes[1]:
            raise ValueError(f"prior layers {shapes[0]} do not match the actor's {shapes[1]}; train the prior with "
                             "the actor's hidden sizes (--hidden) to initialise from it")
        with torch.no_grad():
            for src, dst in zip(own, layers):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)
