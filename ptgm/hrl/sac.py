"""Discrete SAC over the N cluster goals with the prior-divergence term (PTGM's Kitchen learner).

The authors' Kitchen code (built on SPiRL's) trains the high-level policy with SAC over the
discrete codebook: α·KL(π(·|s) ‖ π_p(·|s)) takes the place of SAC's entropy term in both
the actor loss and the critic target, and α is tuned so that the divergence tracks a
target (5 nats in their Kitchen configuration). With N discrete goals every expectation
over the policy is an exact sum, so no action is sampled inside the update:

    V(s')       = Σ_g π(g|s') [ min_i Q̄_i(s', g) − α (log π(g|s') − log π_p(g|s')) ]
    critic loss = Σ_i ( Q_i(s, g) − r − γ (1 − done) V(s') )²
    actor loss  = Σ_g π(g|s) [ α (log π(g|s) − log π_p(g|s)) − min_i Q_i(s, g) ]
    α loss      = −log α · (KL(π ‖ π_p) − target)

Off-policy replay reuses every high-level transition many times, which PPO cannot. Note
the direction: this is KL(policy ‖ prior), as in SPiRL-style SAC, whereas
:class:`~ptgm.hrl.ppo.PTGMPPO` puts KL(prior ‖ policy) in the reward as the paper's
Minecraft objective does. Without a prior the uniform distribution stands in for it,
which makes the term an entropy bonus (plain discrete SAC).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.utils import polyak_update
from torch import nn

from ptgm.prior.model import GoalPrior
from ptgm.settings import TARGET_DIVERGENCE


class GoalSACPolicy(BasePolicy):
    """Actor (logits over the N goals) and two critics (one Q-value per goal), each an MLP, plus target critics."""

    def __init__(self, observation_space: spaces.Box, action_space: spaces.Discrete, lr_schedule,
                 net_arch: list[int] | None = None, activation_fn: type[nn.Module] = nn.ReLU, **kwargs):
        super().__init__(observation_space, action_space, **kwargs)
        self.net_arch = list(net_arch or [256, 256])
        self.activation_fn = activation_fn
        obs_dim, n_goals = int(np.prod(observation_space.shape)), int(action_space.n)
        self.actor = nn.Sequential(*create_mlp(obs_dim, n_goals, self.net_arch, activation_fn))
        self.critics = nn.ModuleList(nn.Sequential(*create_mlp(obs_dim, n_goals, self.net_arch, activation_fn))
                                     for _ in range(2))
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1),
                                                    **self.optimizer_kwargs)
        self.critic_optimizer = self.optimizer_class(self.critics.parameters(), lr=lr_schedule(1),
                                                     **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, activation_fn=self.activation_fn, lr_schedule=self._dummy_schedule)
        return data

    def logits(self, observations: torch.Tensor) -> torch.Tensor:
        return self.actor(observations.float().flatten(1))

    def q_values(self, observations: torch.Tensor, target: bool = False) -> torch.Tensor:
        """``(B, N)``: the smaller of the two critics' Q-values for every goal."""
        critics = self.critics_target if target else self.critics
        obs = observations.float().flatten(1)
        return torch.min(critics[0](obs), critics[1](obs))

    def forward(self, observations: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self._predict(observations, deterministic)

    def _predict(self, observations: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        logits = self.logits(observations)
        if deterministic:
            return logits.argmax(-1)
        return torch.distributions.Categorical(logits=logits).sample()

    def set_training_mode(self, mode: bool) -> None:
        self.actor.train(mode)
        self.critics.train(mode)
        self.training = mode


class GoalSAC(OffPolicyAlgorithm):
    """SAC over PTGM's discrete goals, regularised towards the goal prior.

    Args:
        policy: ``"MlpPolicy"`` (:class:`GoalSACPolicy`).
        env: the goal-selection environment(s) (a ``Discrete(N)`` action space).
        prior: the goal prior; ``None`` regularises towards the uniform distribution instead.
            It is frozen and not saved in the model's zip: pass it again to ``GoalSAC.load``.
        target_divergence: the KL(π ‖ prior) in nats that α steers towards.
        alpha_init: initial α.
        init_from_prior: start the actor equal to the prior (its ``net_arch`` must be the prior's
            hidden widths).
        learning_starts: high-level steps before the first update; collection uses the policy
            (which starts as the prior) from the first step, not uniform random goals.
        Other arguments are :class:`~stable_baselines3.common.off_policy_algorithm.OffPolicyAlgorithm`'s.
    """

    policy_aliases = {"MlpPolicy": GoalSACPolicy}
    policy: GoalSACPolicy

    def __init__(self, policy, env, prior: GoalPrior | None = None, target_divergence: float = TARGET_DIVERGENCE,
                 alpha_init: float = 0.1, init_from_prior: bool = True, learning_rate: float = 3e-4,
                 buffer_size: int = 1_000_000, learning_starts: int = 100, batch_size: int = 256, tau: float = 0.005,
                 gamma: float = 0.99, train_freq: int = 1, gradient_steps: int = -1, policy_kwargs: dict | None = None,
                 tensorboard_log: str | None = None, verbose: int = 0, seed: int | None = None, device="auto",
                 _init_setup_model: bool = True):
        super().__init__(policy, env, learning_rate, buffer_size, learning_starts, batch_size, tau, gamma,
                         train_freq, gradient_steps, action_noise=None, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, device=device, seed=seed,
                         sde_support=False, supported_action_spaces=(spaces.Discrete,), support_multi_env=True)
        self.prior = prior
        self.target_divergence = float(target_divergence)
        self.alpha_init = float(alpha_init)
        if _init_setup_model:
            self._setup_model()
            if init_from_prior and prior is not None:
                prior.copy_into([m for m in self.policy.actor if isinstance(m, nn.Linear)])

    def _setup_model(self) -> None:
        super()._setup_model()
        self.log_alpha = torch.tensor([math.log(self.alpha_init)], device=self.device, requires_grad=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=self.lr_schedule(1))
        if self.prior is not None:
            if self.prior.n_goals != self.action_space.n:
                raise ValueError(f"the prior predicts {self.prior.n_goals} goals but the action space has "
                                 f"{self.action_space.n}")
            self.prior.eval().requires_grad_(False)
            if next(self.prior.parameters()).device != self.device:  # a copy where the learner is (a GPU): the
                self.prior = copy.deepcopy(self.prior).to(self.device)  # pieces the environments use stay put

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["prior"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.actor_optimizer", "policy.critic_optimizer", "alpha_optimizer"], ["log_alpha"]

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        # Warm-up picks goals with the policy, which starts as the prior, not uniformly at random.
        return super()._sample_action(0, action_noise, n_envs)

    def prior_log_probs(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` log π_p(g|s); log(1/N) everywhere without a prior."""
        if self.prior is None:
            n = int(self.action_space.n)
            return torch.full((len(observations), n), -math.log(n), device=observations.device)
        return F.log_softmax(self.prior.logits_from_scaled(observations.float()), dim=-1)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        policy = self.policy
        policy.set_training_mode(True)
        self._update_learning_rate([policy.actor_optimizer, policy.critic_optimizer, self.alpha_optimizer])
        logs: dict[str, list[float]] = {k: [] for k in ("alpha", "divergence", "actor_loss", "critic_loss")}
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = batch.discounts if batch.discounts is not None else self.gamma
            alpha = self.log_alpha.detach().exp()
            with torch.no_grad():
                next_log_pi = F.log_softmax(policy.logits(batch.next_observations), dim=-1)
                next_divergence = next_log_pi - self.prior_log_probs(batch.next_observations)
                next_q = policy.q_values(batch.next_observations, target=True)
                next_v = (next_log_pi.exp() * (next_q - alpha * next_divergence)).sum(-1, keepdim=True)
                target_q = batch.rewards + (1 - batch.dones) * discounts * next_v
            goals = batch.actions.long().reshape(-1, 1)
            obs = batch.observations.float().flatten(1)
            critic_loss = 0.5 * sum(F.mse_loss(critic(obs).gather(1, goals), target_q) for critic in policy.critics)
            policy.critic_optimizer.zero_grad()
            critic_loss.backward()
            policy.critic_optimizer.step()

            log_pi = F.log_softmax(policy.logits(batch.observations), dim=-1)
            pi = log_pi.exp()
            divergence = (pi * (log_pi - self.prior_log_probs(batch.observations))).sum(-1)
            with torch.no_grad():
                q = policy.q_values(batch.observations)
            actor_loss = (alpha * divergence - (pi * q).sum(-1)).mean()
            policy.actor_optimizer.zero_grad()
            actor_loss.backward()
            policy.actor_optimizer.step()

            # α rises while the policy strays further than the target from the prior, falls otherwise.
            alpha_loss = (self.log_alpha * (self.target_divergence - divergence.detach().mean()))
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()

            polyak_update(policy.critics.parameters(), policy.critics_target.parameters(), self.tau)
            for name, value in (("alpha", alpha), ("divergence", divergence.mean()), ("actor_loss", actor_loss),
                                ("critic_loss", critic_loss)):
                logs[name].append(float(value.detach()))
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for name, values in logs.items():
            if values:
                self.logger.record(f"train/{name}", float(np.mean(values)))

