"""SPiRL (Pertsch et al. 2020, "Accelerating RL with learned skill priors"), for continuous actions.

Pre-training (`ptgm spirl`) learns, from the same task-agnostic play data PTGM uses:

- a skill VAE over windows of H consecutive actions (taken inside one episode): an MLP
  encoder q(z | a_{t:t+H}), a latent z of ``latent_dim`` entries and SPiRL's open-loop MLP
  decoder that reconstructs the H actions from z, trained with MSE + β·KL(q ‖ N(0, I));
- a skill prior p(z | s_t), a Gaussian MLP trained on the same batches with
  KL(sg(q(z | a)) ‖ p(z | s_t)) (no gradient into the encoder).

Downstream (`ptgm train --method spirl`), :class:`SkillEnv` makes z the action: it decodes
H actions and runs them open-loop in the task; :class:`SpirlSAC` is Stable-Baselines3's
SAC in that skill space with SPiRL's objective: α·KL(π(z|s) ‖ p(z|s)) in place of the
entropy term, α tuned so the divergence tracks a target (5, SPiRL's Kitchen value), and
the actor initialised as the prior.

Skill space and SAC's tanh: SB3's SAC samples a Gaussian u and acts tanh(u) in a Box.
Here the Box is ``[-1, 1]^latent_dim`` and :class:`SkillEnv` undoes the squashing
(z = atanh(a)), so the skill the decoder gets is the policy's Gaussian sample u itself.
Policy and prior are then both Gaussians over the same z: the divergence needs no
Jacobian, the actor can start exactly equal to the prior, and every latent the prior
proposes is reachable (SPiRL's code instead acts 2·tanh(u) while regularising u,
which distorts the skills away from the origin).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch import nn
from torch.distributions import Normal, kl_divergence

from ptgm import distributed
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import load_run_dataset
from ptgm.domains import domain_of, get_domain
from ptgm.nets import SavableModule, ScaledInput, mlp, observation_scale
from ptgm.settings import TARGET_DIVERGENCE, SpirlConfig
from ptgm.training import fit
from ptgm.utils import PTGMError, dataset_inputs, mark_stage_done, seed_everything, stage_done

logger = logging.getLogger(__name__)

#: Clamp of every predicted log standard deviation (encoder and prior).
LOG_STD_RANGE = (-10.0, 2.0)
#: SPiRL clips the divergence estimate to ±100 so a rare far-off sample cannot swamp the losses.
MAX_DIVERGENCE = 100.0
#: Squashed actions are kept this far inside ±1 before atanh (|z| ≤ 7.25).
ATANH_EPS = 1e-6


def _gaussian(params: torch.Tensor) -> Normal:
    """A diagonal Gaussian from a ``(..., 2 * d)`` tensor of means and log standard deviations."""
    mean, log_std = params.chunk(2, dim=-1)
    return Normal(mean, log_std.clamp(*LOG_STD_RANGE).exp())


class SkillModel(SavableModule):
    """Skill VAE (MLP encoder, open-loop MLP decoder) and Gaussian skill prior p(z | s).

    Args:
        obs_scale: per-entry observation divisor (:func:`ptgm.nets.observation_scale`).
        action_dim: size of one environment action.
        horizon: H, actions per skill.
        latent_dim: size of z.
        hidden: encoder and decoder hidden widths.
        prior_hidden: prior hidden widths (ReLU, so SAC's actor can copy it).
    """

    kind, what, made_by = "spirl-skills", "SPiRL skill model", "ptgm spirl"

    def __init__(self, obs_scale: np.ndarray, action_dim: int, horizon: int = 10, latent_dim: int = 10,
                 hidden: tuple[int, ...] = (128, 128, 128), prior_hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.init_kwargs = {"obs_scale": np.asarray(obs_scale), "action_dim": action_dim, "horizon": horizon,
                            "latent_dim": latent_dim, "hidden": tuple(hidden), "prior_hidden": tuple(prior_hidden)}
        self.action_dim, self.horizon, self.latent_dim = action_dim, horizon, latent_dim
        self.prior_hidden = tuple(prior_hidden)
        self.scale = ScaledInput(obs_scale)
        self.encoder = mlp(horizon * action_dim, tuple(hidden), 2 * latent_dim)
        self.decoder = mlp(latent_dim, tuple(hidden), horizon * action_dim)
        self.prior = mlp(len(obs_scale), tuple(prior_hidden), 2 * latent_dim)
        #: Fingerprint of the dataset it was trained on (set by :func:`load_skills`).
        self.dataset_fingerprint: str | None = None

    @property
    def obs_dim(self) -> int:
        return int(self.scale.scale.shape[0])

    def encode(self, actions: torch.Tensor) -> Normal:
        """q(z | a_{t:t+H}) from ``(B, H, action_dim)`` action windows."""
        return _gaussian(self.encoder(actions.flatten(1)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The ``(B, H, action_dim)`` actions a skill latent stands for (open loop: no state)."""
        return self.decoder(z).view(len(z), self.horizon, self.action_dim)

    def prior_dist(self, obs: torch.Tensor) -> Normal:
        """p(z | s) from raw observations."""
        return _gaussian(self.prior(self.scale(obs)))

    def prior_from_scaled(self, scaled_obs: torch.Tensor) -> Normal:
        """p(z | s) from observations already divided by the scale (what the RL policy sees)."""
        return _gaussian(self.prior(scaled_obs))

    def losses(self, obs: torch.Tensor, actions: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        """SPiRL's training terms on a batch of window-start observations and ``(B, H, A)`` action windows.

        As in SPiRL, the reconstruction is a unit-variance Gaussian NLL (½·MSE) and both KL
        terms are averaged over latent entries in ``loss``; the reported ``kl`` and
        ``prior_kl`` are sums over entries (full-distribution divergences).
        """
        q = self.encode(actions)
        z = q.rsample()
        recon_mse = ((self.decode(z) - actions) ** 2).mean()
        kl = kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1).mean()
        # Stop-gradient: the prior follows the encoder, never the other way round.
        q_fixed = Normal(q.loc.detach(), q.scale.detach())
        prior_kl = kl_divergence(q_fixed, self.prior_dist(obs)).sum(-1).mean()
        loss = 0.5 * recon_mse + (beta * kl + prior_kl) / self.latent_dim
        return {"loss": loss, "recon_mse": recon_mse, "kl": kl, "prior_kl": prior_kl}


def skill_window_starts(data: TrajectoryData, horizon: int, episodes: np.ndarray | None = None) -> np.ndarray:
    """Rows that start a window of ``horizon`` actions lying inside one episode.

    Row t qualifies when rows t .. t+H-1 all carry actions of t's episode, i.e.
    ``t + H <= episode_end[t]`` (the final row of an episode has no action).
    """
    rows = data.action_rows(episodes)
    return rows[rows + horizon <= data.episode_end[rows]]


def action_windows(data: TrajectoryData, starts: np.ndarray, horizon: int) -> np.ndarray:
    """``(len(starts), H, action_dim)`` actions of the windows starting at ``starts``."""
    return data.actions[starts[:, None] + np.arange(horizon)]


def check_continuous(env: gym.Env, domain_name: str) -> gym.spaces.Box:
    """The environment's action space, or a clear error when it is not continuous (SPiRL decodes real actions)."""
    if not isinstance(env.action_space, gym.spaces.Box):
        raise PTGMError(f"SPiRL needs continuous actions; the {domain_name} domain has {env.action_space}. Use it "
                        "on a continuous-action domain (--domain kitchen), or ptgm / ppo here.")
    return env.action_space


def train_spirl(config: SpirlConfig) -> dict:
    """`ptgm spirl`: train the skill VAE and skill prior; writes RUN_DIR/spirl/skills.pt."""
    domain = domain_of(config)
    env = domain.make_env(None)
    action_space = check_continuous(env, domain.name)
    out = Path(config.run_dir) / "spirl"
    device = distributed.resolve_device(config.device)
    distributed.setup(device)
    previous = distributed.prepare_stage_once(out, config, "spirl", dataset_inputs(config))
    if previous is not None:
        return previous
    seed_everything(config.seed)
    batch = distributed.share_of(config.batch_size)
    data = load_run_dataset(config.run_dir, config.dataset or None, domain.dataset_observation_key)
    data.check_observation_size(env.observation_space.shape[0], f"the {domain.name} environment")
    if data.actions.shape[1:] != action_space.shape:
        raise PTGMError(f"The dataset's actions have shape {data.actions.shape[1:]} but the {domain.name} "
                        f"environment's have {action_space.shape}; it was recorded for another environment.")
    train_eps, val_eps = data.split_episodes(config.val_fraction, config.seed)
    train_starts = skill_window_starts(data, config.horizon, train_eps)
    val_starts = skill_window_starts(data, config.horizon, val_eps)
    if len(train_starts) == 0 or len(val_starts) == 0:
        raise PTGMError(f"No window of {config.horizon} actions fits inside the dataset's "
                        f"{'training' if len(train_starts) == 0 else 'held-out'} episodes; record longer episodes "
                        "or lower --horizon.")
    observations = torch.from_numpy(data.observations).to(device)
    own_starts = distributed.rank_rows(train_starts)
    rng = np.random.default_rng(config.seed)
    val_pick = rng.choice(val_starts, size=min(len(val_starts), 5000), replace=False)
    val_obs = observations[val_pick]
    val_actions = torch.from_numpy(action_windows(data, val_pick, config.horizon)).to(device)

    model = SkillModel(observation_scale(env.observation_space), action_space.shape[0], config.horizon,
                       config.latent_dim, config.hidden, config.prior_hidden)

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        rows = rng.choice(own_starts, size=batch)
        actions = torch.from_numpy(action_windows(data, rows, config.horizon)).to(device)
        return model.losses(observations[rows], actions, config.beta)["loss"]

    def validate() -> dict[str, float]:
        terms = model.losses(val_obs, val_actions, config.beta)
        q, prior = model.encode(val_actions), model.prior_dist(val_obs)
        return {"val_loss": terms["loss"].item(), "val_kl": terms["kl"].item(),
                "val_prior_kl": terms["prior_kl"].item(),
                # The decoded prior mean: how good a skill the prior alone proposes.
                "val_prior_mean_mse": ((model.decode(prior.loc) - val_actions) ** 2).mean().item(),
                # Spread of the skills' latents and the prior's width: the scale of the downstream skill space.
                "val_latent_std": q.loc.std(0).mean().item(), "val_prior_std": prior.scale.mean().item(),
                "val_recon_mse": ((model.decode(q.loc) - val_actions) ** 2).mean().item()}

    metrics = fit(model, batch_loss, validate, out=out, steps=config.steps, learning_rate=config.learning_rate,
                  rng=rng, eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
                  resume=config.resume, name="spirl", batch_size=config.batch_size, device=device, amp=config.amp)
    if not distributed.is_main():  # rank 0 writes the skills; the others wait for it, then leave together
        distributed.barrier()
        return metrics
    model.save(out / "skills.pt", fingerprint=data.fingerprint, domain=domain.name)
    # Predicting every action as the dataset mean: the MSE a useless decoder gets.
    mean_action_mse = float(val_actions.var(dim=(0, 1), unbiased=False).mean())
    summary = {**metrics, "mean_action_mse": mean_action_mse, "train_windows": int(len(train_starts)),
               "val_windows": int(len(val_starts)), "fingerprint": data.fingerprint}
    mark_stage_done(out, config, summary)
    distributed.barrier()
    logger.info(f"[spirl] held-out reconstruction MSE {metrics['val_recon_mse']:.4f} (predicting the mean action: "
          f"{mean_action_mse:.4f}); prior KL(q ‖ p) {metrics['val_prior_kl']:.2f} nats")
    return summary


def load_skills(run_dir: str | Path, domain: str, check_dataset: bool = False) -> SkillModel:
    """The finished skill model of ``RUN_DIR/spirl`` (frozen, eval mode).

    With ``check_dataset`` the dataset it was trained on is read again and its fingerprint
    compared, so skills from a since-regenerated or different dataset give a clear error.
    """
    directory = Path(run_dir) / "spirl"
    fix = f"Train them with `ptgm spirl --run-dir {run_dir} --domain {domain}`."
    done = stage_done(directory)
    recorded = done["config"] if done is not None else {}
    dataset = recorded.get("dataset") or None
    plugin = get_domain(domain, dataset=dataset, goal_keys=tuple(recorded.get("goal_keys") or ()))
    check_continuous(plugin.make_env(None), domain)
    if done is None:
        raise PTGMError(f"No finished SPiRL skills in {directory}. {fix}")
    model, ckpt = SkillModel.load(directory / "skills.pt")
    model.dataset_fingerprint = ckpt.get("fingerprint")
    if ckpt.get("domain") != domain:
        raise PTGMError(f"The SPiRL skills in {directory} are for {ckpt.get('domain')}, not {domain}. {fix}")
    if check_dataset:
        data = load_run_dataset(run_dir, dataset, plugin.dataset_observation_key)
        if data.fingerprint != model.dataset_fingerprint:
            raise PTGMError(f"The SPiRL skills in {directory} were trained on dataset {model.dataset_fingerprint}, but "
                            f"{dataset or 'the run dataset'} is now dataset {data.fingerprint}. Retrain them with "
                            f"`ptgm spirl --run-dir {run_dir} --domain {domain} --force`.")
    return model.requires_grad_(False)


class SkillEnv(gym.Wrapper):
    """Skill actions, following :class:`ptgm.hrl.wrapper.GoalSelectionEnv`'s conventions.

    The action is a skill latent squashed by tanh, ``a ∈ [-1, 1]^latent_dim`` (what SB3's SAC
    outputs); one step decodes z = atanh(a) into H actions and runs them open-loop in the
    task, stopping early when the episode ends. The reward is the task reward summed over
    those steps; ``info["env_steps"]`` says how many environment steps were taken.

    Args:
        env: the task environment (raw observations).
        skills: the pre-trained skill model (kept frozen).
    """

    def __init__(self, env: gym.Env, skills: SkillModel):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box) or env.action_space.shape != (skills.action_dim,):
            raise PTGMError(f"The skills decode {skills.action_dim}-dimensional actions but the environment's "
                            f"action space is {env.action_space}; they were trained for another environment.")
        if env.observation_space.shape != (skills.obs_dim,):
            raise PTGMError(f"The skill prior expects {skills.obs_dim} observation entries but the environment has "
                            f"{env.observation_space.shape}; it was trained for another environment.")
        self.skills = skills.eval().requires_grad_(False)
        self.horizon = skills.horizon
        self.action_space = gym.spaces.Box(-1.0, 1.0, (skills.latent_dim,), np.float32)
        self._low, self._high = env.action_space.low, env.action_space.high

    @staticmethod
    def latent(action) -> np.ndarray:
        """The skill latent z = atanh(a) of a squashed action."""
        return np.arctanh(np.clip(np.asarray(action, np.float64), -1 + ATANH_EPS, 1 - ATANH_EPS)).astype(np.float32)

    def decode(self, action) -> np.ndarray:
        """The ``(H, action_dim)`` environment actions of squashed skill ``action`` (clipped to the action box)."""
        with torch.inference_mode():
            actions = self.skills.decode(torch.as_tensor(self.latent(action)).reshape(1, -1))[0]
        return np.clip(actions.numpy(), self._low, self._high)

    def step(self, action):
        total_reward = 0.0
        for steps, low_action in enumerate(self.decode(action), start=1):
            obs, reward, terminated, truncated, info = self.env.step(low_action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        info = dict(info, env_steps=steps, goal=-1)
        return obs, total_reward, terminated, truncated, info


class SpirlSAC(SAC):
    """SAC over skill latents with SPiRL's prior-regularised objective.

    Both the actor loss and the critic target use α·(log π(z|s) − log p(z|s)), a
    one-sample estimate of KL(π(z|s) ‖ p(z|s)), in place of SAC's α·log π(a|s); α is tuned
    so the divergence tracks ``target_divergence``. z is the actor's Gaussian sample before
    tanh, which :class:`SkillEnv` recovers from the squashed action, so both densities are
    Gaussians over the latent the decoder gets. The prior is frozen and not saved in the
    model's zip (only its fingerprint, checked on load): pass it again with
    ``SpirlSAC.load(path, env, skills=load_skills(run_dir, domain))``.

    Args:
        skills: the skill model whose prior regularises the policy.
        target_divergence: the divergence α steers towards (SPiRL's Kitchen value: 5).
        init_from_prior: start the actor equal to the prior (its ``net_arch["pi"]`` must
            equal the prior's hidden widths; the activation is ReLU, SAC's default).
        alpha_init: initial α (SPiRL: 1).
        All other arguments go to :class:`stable_baselines3.SAC` (``ent_coef`` is set here).
    """

    def __init__(self, policy, env, skills: SkillModel | None = None, target_divergence: float = TARGET_DIVERGENCE,
                 init_from_prior: bool = True, alpha_init: float = 1.0, _init_setup_model: bool = True, **kwargs):
        self.skills = skills
        self.skills_fingerprint = getattr(skills, "fingerprint", None)
        self.target_divergence = float(target_divergence)
        super().__init__(policy, env, ent_coef=f"auto_{alpha_init}", _init_setup_model=_init_setup_model, **kwargs)
        if _init_setup_model and init_from_prior:
            initialise_actor_from_skill_prior(self)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.skills is None:
            raise PTGMError("SpirlSAC needs its skill model: load it with "
                            "SpirlSAC.load(path, env, skills=load_skills(run_dir, domain)).")
        given = getattr(self.skills, "fingerprint", None)
        if self.skills_fingerprint and given and given != self.skills_fingerprint:
            raise PTGMError(f"This SPiRL policy was trained with skill model {self.skills_fingerprint}, but the skill "
                            f"model given is {given} (retrained since): the latents mean other skills. Retrain the "
                            "policy with `ptgm train --method spirl --force`.")
        space = self.action_space
        if space.shape != (self.skills.latent_dim,) or not (np.all(space.low == -1) and np.all(space.high == 1)):
            raise PTGMError(f"SpirlSAC acts in SkillEnv's Box(-1, 1, ({self.skills.latent_dim},)); got {space}.")
        self.skills.eval().requires_grad_(False)
        if next(self.skills.parameters()).device != self.device:  # a copy where the learner is (a GPU): the skill
            self.skills = copy.deepcopy(self.skills).to(self.device)  # environments decode with the original

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["skills"]

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        # Warm-up draws skills from the policy, which starts as the prior (SPiRL), not uniformly from the box.
        return super()._sample_action(0, action_noise, n_envs)

    def sample_skills(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tanh(z), z, log π(z|s))`` for one reparameterised sample z per (scaled) observation."""
        mean, log_std, _ = self.actor.get_action_dist_params(observations)
        policy = Normal(mean, log_std.exp())
        z = policy.rsample()
        return torch.tanh(z), z, policy.log_prob(z).sum(-1)

    def prior_divergence(self, observations: torch.Tensor, z: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
        """``(B, 1)`` one-sample estimate log π(z|s) − log p(z|s) of KL(π ‖ p), clipped to ±100 as in SPiRL."""
        log_p = self.skills.prior_from_scaled(observations).log_prob(z).sum(-1)
        return (log_pi - log_p).clamp(-MAX_DIVERGENCE, MAX_DIVERGENCE).reshape(-1, 1)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer, self.ent_coef_optimizer])
        alphas, alpha_losses, divergences, actor_losses, critic_losses = [], [], [], [], []
        for gradient_step in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = batch.discounts if batch.discounts is not None else self.gamma
            actions_pi, z, log_pi = self.sample_skills(batch.observations)
            divergence = self.prior_divergence(batch.observations, z, log_pi)

            # α rises while the policy strays further than the target from the prior, falls otherwise.
            alpha = self.log_ent_coef.detach().exp()
            alpha_loss = (self.log_ent_coef * (self.target_divergence - divergence.detach())).mean()
            self.ent_coef_optimizer.zero_grad()
            alpha_loss.backward()
            self.ent_coef_optimizer.step()

            with torch.no_grad():
                next_actions, next_z, next_log_pi = self.sample_skills(batch.next_observations)
                next_q = torch.cat(self.critic_target(batch.next_observations, next_actions), dim=1).min(1, True)[0]
                next_q = next_q - alpha * self.prior_divergence(batch.next_observations, next_z, next_log_pi)
                target_q = batch.rewards + (1 - batch.dones) * discounts * next_q
            critic_loss = 0.5 * sum(nn.functional.mse_loss(q, target_q)
                                    for q in self.critic(batch.observations, batch.actions))
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            min_q_pi = torch.cat(self.critic(batch.observations, actions_pi), dim=1).min(1, True)[0]
            actor_loss = (alpha * divergence - min_q_pi).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            alphas.append(alpha.item())
            alpha_losses.append(alpha_loss.item())
            divergences.append(divergence.mean().item())
            actor_losses.append(actor_loss.item())
            critic_losses.append(critic_loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for name, values in (("ent_coef", alphas), ("ent_coef_loss", alpha_losses), ("actor_loss", actor_losses),
                             ("critic_loss", critic_losses), ("prior_divergence", divergences)):
            if values:
                self.logger.record(f"train/{name}", float(np.mean(values)))


def initialise_actor_from_skill_prior(model: SpirlSAC) -> None:
    """Make π(z|s) start equal to the prior p(z|s) by copying its weights into SB3's actor.

    The actor's pre-tanh Gaussian is the distribution of z (see :class:`SkillEnv`), so the
    prior's hidden layers, mean and log-std heads map one to one onto ``latent_pi``,
    ``mu`` and ``log_std``.
    """
    prior_layers = [m for m in model.skills.prior if isinstance(m, nn.Linear)]
    actor = model.actor
    actor_layers = [m for m in actor.latent_pi if isinstance(m, nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in prior_layers[:-1]], [tuple(m.weight.shape) for m in actor_layers]
    if shapes[0] != shapes[1] or not isinstance(actor.mu, nn.Linear):
        raise PTGMError(f"The skill prior's hidden layers {shapes[0]} do not match the SAC actor's {shapes[1]}: "
                        "leave --hidden empty (the prior's widths) or pass --no-init-from-prior.")
    d = model.skills.latent_dim
    last = prior_layers[-1]
    with torch.no_grad():
        for src, dst in zip(prior_layers[:-1], actor_layers):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        for head, rows in ((actor.mu, slice(0, d)), (actor.log_std, slice(d, 2 * d))):
            head.weight.copy_(last.weight[rows])
            head.bias.copy_(last.bias[rows])
