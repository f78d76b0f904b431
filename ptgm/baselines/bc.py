"""Behaviour cloning of a flat SB3 policy on the play dataset, and PPO fine-tuning of it as VPT does.

The ``bc-ppo`` method starts PPO's actor from a policy cloned from the same task-agnostic data PTGM pre-trains
on, then fine-tunes it on the task as VPT's RL fine-tuning does (Baker et al., 2022): cloning runs until the
held-out loss stops improving, the critic learns alone for a first part of the budget while the actor holds
still, and a KL term keeps the policy near the cloned one. It is the flat counterpart of PTGM, without goals:
the KL enters the reward exactly as PTGM's KL(prior ‖ policy) does (:class:`~ptgm.hrl.ppo.PriorKLReward`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.policies import ActorCriticPolicy

from ptgm.hrl.ppo import PriorKLReward
from ptgm.progress import progress
from ptgm.utils import PTGMError

#: Gradient steps between two held-out checks of behaviour cloning, and how many checks without a better
#: held-out loss end it.
BC_CHECK_EVERY, BC_PATIENCE = 500, 4


def actor_parameters(policy: ActorCriticPolicy) -> list[torch.nn.Parameter]:
    """The actor's parameters of an SB3 actor-critic policy (everything but the value network)."""
    return [p for name, p in policy.named_parameters() if not name.startswith(("value_net", "mlp_extractor.value"))]


def behaviour_clone(policy: ActorCriticPolicy, observations: np.ndarray, actions: np.ndarray, steps: int,
                    batch_size: int = 256, learning_rate: float = 3e-4, seed: int = 0,
                    val_observations: np.ndarray | None = None, val_actions: np.ndarray | None = None) -> dict:
    """Maximise the actor's log-likelihood of the dataset's actions (the critic is left alone).

    Args:
        policy: an SB3 actor-critic policy (PPO's ``model.policy``); trained in place.
        observations: ``(n, obs_dim)`` observations as the policy sees them (already scaled).
        actions: ``(n, ...)`` the actions taken.
        steps: gradient steps at most.
        val_observations, val_actions: held-out rows; given, cloning stops once their loss has not improved
            for ``BC_PATIENCE`` checks ``BC_CHECK_EVERY`` steps apart, keeping the weights of the best check.

    Returns:
        ``{"bc_loss": final mean negative log-likelihood of a training batch, "bc_accuracy": accuracy on training
        rows (discrete only), "bc_steps": steps taken, "bc_val_loss": best held-out loss (NaN without held-out
        rows)}``.
    """
    if len(observations) != len(actions) or len(observations) == 0:
        raise PTGMError(f"behaviour cloning needs matching, non-empty observations and actions; got "
                        f"{len(observations)} and {len(actions)}")
    rng = np.random.default_rng(seed)
    obs_t, act_t = torch.as_tensor(observations, dtype=torch.float32), torch.as_tensor(actions)
    held_out = val_observations is not None and len(val_observations) > 0
    if held_out:
        val_obs_t, val_act_t = torch.as_tensor(val_observations, dtype=torch.float32), torch.as_tensor(val_actions)
    optimizer = torch.optim.Adam(actor_parameters(policy), lr=learning_rate)
    policy.set_training_mode(True)
    loss_value, best, best_state, since_best, taken = float("nan"), float("inf"), None, 0, 0
    for step in progress(range(steps), desc="behaviour cloning", leave=False):
        rows = torch.as_tensor(rng.integers(0, len(obs_t), batch_size))
        _, log_prob, _ = policy.evaluate_actions(obs_t[rows], act_t[rows])
        loss = -log_prob.mean()
        if not torch.isfinite(loss):
            raise PTGMError("behaviour cloning loss became NaN/inf; lower the learning rate or check the dataset.")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value, taken = loss.item(), step + 1
        if held_out and taken % BC_CHECK_EVERY == 0:
            with torch.no_grad():
                val_loss = -policy.evaluate_actions(val_obs_t, val_act_t)[1].mean().item()
            if val_loss < best:
                best, best_state, since_best = val_loss, copy.deepcopy(policy.state_dict()), 0
            else:
                since_best += 1
                if since_best >= BC_PATIENCE:
                    break
    if best_state is not None:
        policy.load_state_dict(best_state)
    accuracy = float("nan")
    if policy.action_space.__class__.__name__ == "Discrete":
        with torch.no_grad():
            rows = torch.as_tensor(rng.integers(0, len(obs_t), min(4096, len(obs_t))))
            predicted = policy.get_distribution(obs_t[rows]).mode()
            accuracy = float((predicted == act_t[rows]).float().mean())
    policy.set_training_mode(False)
    return {"bc_loss": loss_value, "bc_accuracy": accuracy, "bc_steps": taken,
            "bc_val_loss": best if held_out and best_state is not None else float("nan")}


class ClonedPolicyKLReward(PriorKLReward):
    """Subtracts β·KL(π_bc(·|s) ‖ π_θ(·|s)) from each collected reward: the divergence of the current policy from
    the frozen behaviour-cloned one, at the state where the action was chosen (summed over action dimensions for
    a Gaussian policy)."""

    log_key = "bc/kl_cloned_policy"

    def divergence(self, obs: torch.Tensor) -> torch.Tensor:
        cloned = self.reference.get_distribution(obs).distribution
        current = self.model.policy.get_distribution(obs).distribution
        kl = torch.distributions.kl_divergence(cloned, current)
        return kl if kl.ndim == 1 else kl.sum(-1)


class CriticWarmup(BaseCallback):
    """Holds the actor still until ``steps`` environment steps have been taken: the critic learns the cloned
    policy's values first, so early advantage estimates from an untrained critic do not undo the cloning."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def _on_rollout_end(self) -> None:  # runs just before each PPO update
        warming = self.model.num_timesteps < self.steps
        for parameter in actor_parameters(self.model.policy):
            parameter.requires_grad_(not warming)
        self.logger.record("bc/critic_warmup", float(warming))

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        for parameter in actor_parameters(self.model.policy):
            parameter.requires_grad_(True)


class BCFineTunePPO(PPO):
    """PPO fine-tuning a behaviour-cloned actor, VPT's way.

    Args:
        kl_coef: β, the weight of KL(π_bc ‖ π_θ) in the reward (0: no KL term).
        critic_warmup_steps: environment steps during which only the critic learns.
        All other arguments go to :class:`stable_baselines3.PPO`.

    Call :meth:`freeze_reference` once the actor is cloned: the KL is measured to that copy, which is saved with
    the model.
    """

    def __init__(self, *args, kl_coef: float = 0.0, critic_warmup_steps: int = 0, **kwargs):
        self.kl_coef, self.critic_warmup_steps = kl_coef, critic_warmup_steps
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.reference_policy = copy.deepcopy(self.policy).requires_grad_(False).eval()

    def freeze_reference(self) -> None:
        """Make the current actor the cloned policy the KL term measures against."""
        self.reference_policy.load_state_dict(self.policy.state_dict())

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        return state_dicts + ["reference_policy"], tensors

    def learn(self, total_timesteps: int, callback=None, **kwargs):
        callbacks = [CriticWarmup(self.critic_warmup_steps)] if self.critic_warmup_steps > 0 else []
        if self.kl_coef > 0:
            callbacks.append(ClonedPolicyKLReward(self.reference_policy, self.kl_coef))
        if callbacks:
            callback = CallbackList(callbacks + ([callback] if callback is not None else []))
        return super().learn(total_timesteps, callback=callback, **kwargs)
