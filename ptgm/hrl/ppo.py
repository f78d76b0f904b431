"""Stable-Baselines3 PPO with PTGM's goal-prior regulariser.

At every high-level step the reward becomes ``r - α · KL(π_p(·|s) ‖ π_θ(·|s))``:
the task reward summed over the k low-level steps, minus α times the divergence
of the current policy from the goal prior at the state where the goal was chosen.
The KL is computed with the policy at collection time and treated as part of the
reward (a constant for the PPO update), as in the authors' Minecraft code.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from ptgm.prior.model import GoalPrior


def kl_prior_to_policy(prior_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """KL(prior ‖ policy) per row, for categorical distributions given by logits."""
    prior_log_p = F.log_softmax(prior_logits, dim=-1)
    policy_log_p = F.log_softmax(policy_logits, dim=-1)
    return (prior_log_p.exp() * (prior_log_p - policy_log_p)).sum(-1)


class PriorKLReward(BaseCallback):
    """Subtracts α·KL(prior ‖ policy) from each collected reward before it enters the rollout buffer.

    SB3 calls ``on_step`` right after ``env.step`` and before ``rollout_buffer.add``, with
    ``rewards`` (the array that is then stored) and ``obs_tensor`` (the observations the
    actions were chosen at) among its locals; we change ``rewards`` in place. Subclasses measure the
    divergence to another frozen reference (:meth:`divergence`).
    """

    #: Where the mean divergence of each rollout is logged.
    log_key = "ptgm/kl_prior_policy"

    def __init__(self, reference: torch.nn.Module, alpha: float):
        super().__init__()
        self.reference = reference.eval().requires_grad_(False)
        self.alpha = alpha
        self._kls: list[float] = []

    def _on_training_start(self) -> None:
        if next(self.reference.parameters()).device != self.model.device:  # a copy where the learner is (a GPU)
            self.reference = copy.deepcopy(self.reference).to(self.model.device)

    def divergence(self, obs: torch.Tensor) -> torch.Tensor:
        """Per row of ``obs``, KL(reference ‖ current policy)."""
        policy_logits = self.model.policy.get_distribution(obs).distribution.logits
        return kl_prior_to_policy(self.reference.logits_from_scaled(obs.float()), policy_logits)

    def _on_step(self) -> bool:
        with torch.no_grad():
            kl = self.divergence(self.locals["obs_tensor"]).cpu().numpy()
        self.locals["rewards"] -= (self.alpha * kl).astype(self.locals["rewards"].dtype)
        self._kls.extend(kl.tolist())
        return True

    def _on_rollout_end(self) -> None:
        if self._kls:
            self.logger.record(self.log_key, float(np.mean(self._kls)))
            self._kls.clear()


class PTGMPPO(PPO):
    """PPO over the N cluster goals with the KL-to-prior reward term.

    Args:
        prior: the goal prior; ``None`` or ``kl_coef == 0`` gives plain PPO (the no-prior ablation).
        kl_coef: α, the weight of the KL term.
        init_from_prior: copy the prior's weights into the actor at start (its hidden
            layers must match the actor's ``net_arch["pi"]`` and use ReLU).
        All other arguments go to :class:`stable_baselines3.PPO`.
    """

    def __init__(self, *args, prior: GoalPrior | None = None, kl_coef: float = 0.0, init_from_prior: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.prior = prior
        self.kl_coef = kl_coef
        if init_from_prior:
            if prior is None:
                raise ValueError("init_from_prior needs a prior")
            initialise_actor_from_prior(self, prior)

    def learn(self, total_timesteps: int, callback=None, **kwargs):
        if self.prior is not None and self.kl_coef > 0:
            kl_callback = PriorKLReward(self.prior, self.kl_coef)
            callback = CallbackList([kl_callback] + ([callback] if callback is not None else []))
        return super().learn(total_timesteps, callback=callback, **kwargs)


def initialise_actor_from_prior(model: PPO, prior: GoalPrior) -> None:
    """Make π_θ start equal to π_p by copying weights layer by layer."""
    actor_layers = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    prior.copy_into(actor_layers + [model.policy.action_net])
