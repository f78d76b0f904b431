"""Behaviour cloning of a flat SB3 policy on the play dataset (the paper's VPT-finetune analogue).

The ``bc-ppo`` method starts PPO's actor from a policy cloned from the same task-agnostic
data PTGM pre-trains on, then fine-tunes it with PPO on the task: the flat counterpart of
PTGM's pre-training, without goals.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from ptgm.progress import progress
from ptgm.utils import PTGMError


def behaviour_clone(policy: ActorCriticPolicy, observations: np.ndarray, actions: np.ndarray, steps: int,
                    batch_size: int = 256, learning_rate: float = 3e-4, seed: int = 0) -> dict:
    """Maximise the actor's log-likelihood of the dataset's actions (the critic is left alone).

    Args:
        policy: an SB3 actor-critic policy (PPO's ``model.policy``); trained in place.
        observations: ``(n, obs_dim)`` observations as the policy sees them (already scaled).
        actions: ``(n, ...)`` the actions taken.
        steps: gradient steps.

    Returns:
        ``{"bc_loss": final mean negative log-likelihood, "bc_accuracy": training-batch accuracy (discrete only)}``.
    """
    if len(observations) != len(actions) or len(observations) == 0:
        raise PTGMError(f"behaviour cloning needs matching, non-empty observations and actions; got "
                        f"{len(observations)} and {len(actions)}")
    rng = np.random.default_rng(seed)
    obs_t, act_t = torch.as_tensor(observations, dtype=torch.float32), torch.as_tensor(actions)
    actor = [p for name, p in policy.named_parameters() if not name.startswith(("value_net", "mlp_extractor.value"))]
    optimizer = torch.optim.Adam(actor, lr=learning_rate)
    policy.set_training_mode(True)
    loss_value, accuracy = float("nan"), float("nan")
    for _ in progress(range(steps), desc="behaviour cloning", leave=False):
        rows = torch.as_tensor(rng.integers(0, len(obs_t), batch_size))
        _, log_prob, _ = policy.evaluate_actions(obs_t[rows], act_t[rows])
        loss = -log_prob.mean()
        if not torch.isfinite(loss):
            raise PTGMError("behaviour cloning loss became NaN/inf; lower the learning rate or check the dataset.")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
    if policy.action_space.__class__.__name__ == "Discrete":
        with torch.no_grad():
            rows = torch.as_tensor(rng.integers(0, len(obs_t), min(4096, len(obs_t))))
            predicted = policy.get_distribution(obs_t[rows]).mode()
            accuracy = float((predicted == act_t[rows]).float().mean())
    policy.set_training_mode(False)
    return {"bc_loss": loss_value, "bc_accuracy": accuracy}
