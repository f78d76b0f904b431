"""SPiRL (Pertsch et al. 2020, "Accelerating RL with learned skill priors"), for continuous actions.

Pre-training (`ptgm spirl`) learns, from the same task-agnostic play data PTGM uses, the model of the
paper and of its repository (github.com/clvrai/spirl, ``SkillPriorMdl`` and ``ClSPiRLMdl``):

- a skill VAE over windows of H consecutive actions (taken inside one episode): an LSTM encoder
  q(z | a_{t:t+H}) and a skill decoder, trained with a unit-variance Gaussian NLL (½·MSE) + β·KL(q ‖ N(0, I)).
  The decoder is either the paper's *open-loop* LSTM, which unrolls z into a_1..a_H without seeing a state
  (method ``spirl``), or the repository's *closed-loop* MLP a_t = decoder(s_t, z), whose encoder also reads
  the states s_{t:t+H} (``--closed-loop``, method ``spirl-cl``; the repository recommends it for Kitchen);
- a skill prior p(z | s_t): a Gaussian MLP (the paper), or a mixture of Gaussians for multimodal play,
  fitted to the *detached* posterior (no gradient into the encoder), by -log p(z | s_t) of a posterior
  sample (the repository's default) or by the analytic KL(sg(q(z | a)) ‖ p(z | s_t)) (the paper's equation).

Downstream (`ptgm train --method spirl` / ``spirl-cl``), :class:`SkillEnv` makes z the action: one step runs
H environment steps of the decoded skill (open loop: the H actions decoded at the start; closed loop: each
action decoded from the state reached); :class:`SpirlSAC` is Stable-Baselines3's SAC in that skill space with
SPiRL's objective: α·KL(π(z|s) ‖ p(z|s)) in place of the entropy term, α tuned so the divergence tracks a
target (5, SPiRL's Kitchen value), and the actor initialised as the prior.

Skill space and SAC's tanh: SB3's SAC samples a Gaussian u and acts tanh(u) in a Box.
Here the Box is ``[-1, 1]^latent_dim`` and :class:`SkillEnv` undoes the squashing
(z = atanh(a)), so the skill the decoder gets is the policy's Gaussian sample u itself.
Policy and prior are then both densities over the same z: the divergence needs no
Jacobian, the actor can start exactly equal to a Gaussian prior, and every latent the prior
proposes is reachable (SPiRL's code instead acts 2·tanh(u) while regularising u,
which distorts the skills away from the origin).

What differs from the repository, and why: its MLPs use batch normalisation and LeakyReLU(0.2); here they
are plain ReLU MLPs, so that the Gaussian prior is exactly SB3's actor architecture and the actor can start
as a copy of it (the repository copies its own prior network, batch normalisation frozen). The optimiser is
Adam (the repository: RAdam), both at learning rate 1e-3.
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
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal, kl_divergence

from ptgm import distributed
from ptgm.data.dataset import TrajectoryData
from ptgm.data.generate import load_run_dataset, run_dataset_path
from ptgm.data.shards import Rows, stage_data
from ptgm.domains import domain_of, get_domain
from ptgm.nets import SavableModule, ScaledInput, mlp, observation_scale
from ptgm.settings import TARGET_DIVERGENCE, SpirlConfig, spirl_stage_name
from ptgm.training import fit
from ptgm.utils import PTGMError, dataset_inputs, mark_stage_done, seed_everything, stage_done

logger = logging.getLogger(__name__)

#: Clamp of every predicted log standard deviation (encoder and prior; the repository's MDN uses the same).
LOG_STD_RANGE = (-10.0, 2.0)
#: SPiRL clips the divergence estimate to ±100 so a rare far-off sample cannot swamp the losses.
MAX_DIVERGENCE = 100.0
#: Squashed actions are kept this far inside ±1 before atanh (|z| ≤ 7.25).
ATANH_EPS = 1e-6
#: Skill priors: a diagonal Gaussian, or a mixture of diagonal Gaussians.
PRIOR_TYPES = ("gaussian", "mixture")
#: Posterior samples per window for the Monte-Carlo prior metrics (NLL; KL of a mixture).
VAL_SAMPLES = 16


def _gaussian(params: torch.Tensor) -> Normal:
    """A diagonal Gaussian from a ``(..., 2 * d)`` tensor of means and log standard deviations."""
    mean, log_std = params.chunk(2, dim=-1)
    return Normal(mean, log_std.clamp(*LOG_STD_RANGE).exp())


def _init_forget_gate(lstm: nn.LSTM | nn.LSTMCell) -> None:
    """Forget-gate biases of 1 (the repository's ``init_bias``), so the cell keeps its memory from the start."""
    with torch.no_grad():
        for name, bias in lstm.named_parameters():
            if name.startswith("bias"):  # bias_ih and bias_hh are added: ½ each
                n = bias.shape[0] // 4  # PyTorch orders the gates input, forget, cell, output
                bias[n:2 * n] = 0.5


class SequenceEncoder(nn.Module):
    """q(z | x_{1:H}): an LSTM over the window, its last output mapped to z's mean and log-std.

    As the repository's ``BaseProcessingLSTM``: a linear embedding of each step, one LSTM layer, and a
    linear head on the output after the last step.
    """

    def __init__(self, in_dim: int, latent_dim: int, size: int = 128):
        super().__init__()
        self.embed = nn.Linear(in_dim, size)
        self.lstm = nn.LSTM(size, size, batch_first=True)
        self.head = nn.Linear(size, 2 * latent_dim)
        _init_forget_gate(self.lstm)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """``(B, 2 * latent_dim)`` Gaussian parameters from a ``(B, H, in_dim)`` sequence."""
        output, _ = self.lstm(self.embed(sequence))
        return self.head(output[:, -1])


class OpenLoopDecoder(nn.Module):
    """The paper's open-loop skill decoder: an autoregressive LSTM that unrolls z into H actions.

    Each step's input is the previous predicted action and z (the first step: a learned initial action),
    its hidden state starts from a learned constant: no state is seen, so the H actions are fixed once z is.
    """

    def __init__(self, latent_dim: int, action_dim: int, horizon: int, size: int = 128):
        super().__init__()
        self.horizon = horizon
        self.embed = nn.Linear(action_dim + latent_dim, size)
        self.cell = nn.LSTMCell(size, size)
        self.head = nn.Linear(size, action_dim)
        self.initial_action = nn.Parameter(torch.zeros(action_dim))
        self.initial_state = nn.Parameter(torch.zeros(2, size))
        _init_forget_gate(self.cell)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, H, action_dim)`` actions of ``(B, latent_dim)`` skills."""
        batch = len(z)
        action = self.initial_action.expand(batch, -1)
        h, c = (s.expand(batch, -1) for s in self.initial_state)
        actions = []
        for _ in range(self.horizon):
            h, c = self.cell(self.embed(torch.cat([action, z], dim=-1)), (h, c))
            action = self.head(h)
            actions.append(action)
        return torch.stack(actions, dim=1)


class SkillModel(SavableModule):
    """SPiRL's skill VAE (LSTM encoder; open- or closed-loop decoder) and skill prior p(z | s).

    Args:
        obs_scale: per-entry observation divisor (:func:`ptgm.nets.observation_scale`).
        action_dim: size of one environment action.
        horizon: H, actions per skill.
        latent_dim: size of z.
        closed_loop: decode each action from the current state and z (``ClSPiRLMdl``), the encoder then reads
            the window's states beside its actions; False: the open-loop LSTM decoder, actions only.
        lstm_size: units of the encoder LSTM and of the open-loop decoder LSTM.
        hidden: hidden widths of the closed-loop decoder MLP.
        prior_hidden: prior hidden widths (ReLU, so SAC's actor can copy a Gaussian prior).
        prior_type: ``"gaussian"`` or ``"mixture"`` (of ``prior_components`` diagonal Gaussians).
        prior_components: mixture components.
    """

    kind, what, made_by = "spirl-skills", "SPiRL skill model", "ptgm spirl"

    def __init__(self, obs_scale: np.ndarray, action_dim: int, horizon: int = 10, latent_dim: int = 10,
                 closed_loop: bool = False, lstm_size: int = 128, hidden: tuple[int, ...] = (128,) * 6,
                 prior_hidden: tuple[int, ...] = (128,) * 7, prior_type: str = "gaussian", prior_components: int = 5):
        super().__init__()
        if prior_type not in PRIOR_TYPES:
            raise PTGMError(f"Unknown skill prior {prior_type!r}; choose one of {', '.join(PRIOR_TYPES)}.")
        self.init_kwargs = {"obs_scale": np.asarray(obs_scale), "action_dim": action_dim, "horizon": horizon,
                            "latent_dim": latent_dim, "closed_loop": bool(closed_loop), "lstm_size": lstm_size,
                            "hidden": tuple(hidden), "prior_hidden": tuple(prior_hidden), "prior_type": prior_type,
                            "prior_components": prior_components}
        self.action_dim, self.horizon, self.latent_dim = action_dim, horizon, latent_dim
        self.closed_loop, self.prior_type, self.prior_components = bool(closed_loop), prior_type, prior_components
        self.prior_hidden = tuple(prior_hidden)
        obs_dim = len(obs_scale)
        self.scale = ScaledInput(obs_scale)
        self.encoder = SequenceEncoder(action_dim + (obs_dim if closed_loop else 0), latent_dim, lstm_size)
        if closed_loop:
            self.decoder: nn.Module = mlp(obs_dim + latent_dim, tuple(hidden), action_dim)
        else:
            self.decoder = OpenLoopDecoder(latent_dim, action_dim, horizon, lstm_size)
        # Gaussian: mean and log-std per entry; mixture: K logits, then K means and K log-stds per entry.
        prior_out = 2 * latent_dim if prior_type == "gaussian" else prior_components * (1 + 2 * latent_dim)
        self.prior = mlp(obs_dim, tuple(prior_hidden), prior_out)
        #: Fingerprint of the dataset it was trained on (set by :func:`load_skills`).
        self.dataset_fingerprint: str | None = None

    @property
    def obs_dim(self) -> int:
        return int(self.scale.scale.shape[0])

    # -- the VAE --------------------------------------------------------------------------------------------
    def encode(self, actions: torch.Tensor, observations: torch.Tensor | None = None) -> Normal:
        """q(z | a_{t:t+H} [, s_{t:t+H}]) from ``(B, H, action_dim)`` actions and, for the closed-loop model,
        the ``(B, H, obs_dim)`` raw states they were taken in."""
        if self.closed_loop:
            if observations is None:
                raise PTGMError("The closed-loop SPiRL encoder reads the window's states too: pass observations.")
            actions = torch.cat([actions, self.scale(observations)], dim=-1)
        return _gaussian(self.encoder(actions))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The ``(B, H, action_dim)`` actions of open-loop skills ``z`` (the closed-loop model needs states:
        :meth:`decode_step`)."""
        if self.closed_loop:
            raise PTGMError("A closed-loop skill decodes one action per state: use decode_step(observation, z).")
        return self.decoder(z)

    def decode_step(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The closed-loop action a = decoder(s, z) for ``(..., obs_dim)`` raw states and ``(..., latent_dim)``
        skills."""
        if not self.closed_loop:
            raise PTGMError("An open-loop skill decodes all H actions at once: use decode(z).")
        return self.decoder(torch.cat([self.scale(obs), z], dim=-1))

    def reconstruct(self, observations: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(B, H, action_dim)`` decoded actions of skills ``z`` along ``(B, H, obs_dim)`` states (teacher
        forcing: the closed-loop decoder sees the recorded states, as in training; open loop ignores them)."""
        if self.closed_loop:
            return self.decode_step(observations, z[:, None].expand(-1, observations.shape[1], -1))
        return self.decode(z)

    # -- the prior ------------------------------------------------------------------------------------------
    def prior_from_scaled(self, scaled_obs: torch.Tensor) -> Distribution:
        """p(z | s) from observations already divided by the scale (what the RL policy sees): a
        :class:`~torch.distributions.Normal` per entry (Gaussian prior), or a mixture over whole latents."""
        out = self.prior(scaled_obs)
        if self.prior_type == "gaussian":
            return _gaussian(out)
        k, d = self.prior_components, self.latent_dim
        logits, params = out[..., :k], out[..., k:].reshape(*out.shape[:-1], k, 2 * d)
        return MixtureSameFamily(Categorical(logits=logits), Independent(_gaussian(params), 1))

    def prior_dist(self, obs: torch.Tensor) -> Distribution:
        """p(z | s) from raw observations (see :meth:`prior_from_scaled`)."""
        return self.prior_from_scaled(self.scale(obs))

    @staticmethod
    def log_prob(dist: Distribution, z: torch.Tensor) -> torch.Tensor:
        """log p(z) of whole latents, ``(...)``, for a prior of either type."""
        log_p = dist.log_prob(z)
        return log_p.sum(-1) if isinstance(dist, Normal) else log_p

    def prior_log_prob_scaled(self, scaled_obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(z | s) of ``(B, latent_dim)`` skills at scaled observations, ``(B,)``."""
        return self.log_prob(self.prior_from_scaled(scaled_obs), z)

    def prior_mode(self, scaled_obs: torch.Tensor) -> torch.Tensor:
        """The prior's most likely skill: a Gaussian's mean; a mixture's most probable component's mean."""
        dist = self.prior_from_scaled(scaled_obs)
        if isinstance(dist, Normal):
            return dist.loc
        means = dist.component_distribution.base_dist.loc  # (B, K, d)
        best = dist.mixture_distribution.logits.argmax(-1)
        return means[torch.arange(len(best)), best]

    def prior_sample(self, scaled_obs: torch.Tensor) -> torch.Tensor:
        """One skill drawn from p(z | s) per scaled observation."""
        return self.prior_from_scaled(scaled_obs).sample()

    def prior_loss(self, obs: torch.Tensor, posterior: Normal, z: torch.Tensor, loss: str = "nll") -> torch.Tensor:
        """How far p(z | s) is from the posterior, with no gradient into the posterior (stop-gradient: the prior
        follows the encoder, never the other way round).

        ``nll``: -log p(sg(z) | s) of a posterior sample z, summed over entries (the repository's default;
        any prior). ``kl``: the analytic KL(sg(q) ‖ p) averaged over entries (the paper's; Gaussian prior).
        Both have the same expected gradient for a Gaussian prior; only their noise and scale differ.
        """
        prior = self.prior_dist(obs)
        if loss == "nll":
            return -self.log_prob(prior, z.detach()).mean()
        if loss != "kl" or not isinstance(prior, Normal):
            raise PTGMError(f"Prior loss {loss!r} is not defined for a {self.prior_type} prior; use nll.")
        fixed = Normal(posterior.loc.detach(), posterior.scale.detach())
        return kl_divergence(fixed, prior).mean()

    def losses(self, observations: torch.Tensor, actions: torch.Tensor, beta: float,
               prior_loss: str = "nll") -> dict[str, torch.Tensor]:
        """SPiRL's training terms on ``(B, H, obs_dim)`` window states and ``(B, H, A)`` action windows.

        As in SPiRL, the reconstruction is a unit-variance Gaussian NLL (½·MSE), the VAE's KL term is averaged
        over latent entries in ``loss`` and the prior's term is added with weight 1 (it only trains the prior);
        the reported ``kl`` is a sum over entries (the full divergence). The prior sees the window's first state.
        """
        q = self.encode(actions, observations)
        z = q.rsample()
        recon_mse = ((self.reconstruct(observations, z) - actions) ** 2).mean()
        kl = kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1).mean()
        prior_term = self.prior_loss(observations[:, 0], q, z, prior_loss)
        loss = 0.5 * recon_mse + beta * kl / self.latent_dim + prior_term
        return {"loss": loss, "recon_mse": recon_mse, "kl": kl, "prior_loss": prior_term}

    @torch.no_grad()
    def prior_metrics(self, observations: torch.Tensor, actions: torch.Tensor,
                      samples: int = VAL_SAMPLES) -> dict[str, float]:
        """How well p(z | s) predicts the skills of held-out windows (in nats, summed over latent entries).

        ``prior_nll``: -E_q[log p(z | s)], the cross-entropy from the posterior (lower: likelier skills);
        ``unit_prior_nll``: the same under the fixed N(0, I), the VAE's own prior (what the learned prior should
        beat); ``prior_kl``: KL(q ‖ p) (analytic for a Gaussian prior, a Monte-Carlo estimate for a mixture).
        """
        q = self.encode(actions, observations)
        prior = self.prior_dist(observations[:, 0])
        z = q.sample((samples,))  # (S, B, d)
        log_q = q.log_prob(z).sum(-1)
        log_p = self.log_prob(prior, z)
        unit = Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
        if isinstance(prior, Normal):
            prior_kl = kl_divergence(q, prior).sum(-1).mean().item()
        else:
            prior_kl = (log_q - log_p).mean().item()
        return {"prior_nll": -log_p.mean().item(), "unit_prior_nll": -unit.log_prob(z).sum(-1).mean().item(),
                "prior_kl": prior_kl}


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


def window_rows(starts: np.ndarray, horizon: int) -> np.ndarray:
    """``(len(starts), H)`` dataset rows of the windows starting at ``starts`` (their states s_t..s_{t+H-1})."""
    return starts[:, None] + np.arange(horizon)


def check_continuous(env: gym.Env, domain_name: str) -> gym.spaces.Box:
    """The environment's action space, or a clear error when it is not continuous (SPiRL decodes real actions)."""
    if not isinstance(env.action_space, gym.spaces.Box):
        raise PTGMError(f"SPiRL needs continuous actions; the {domain_name} domain has {env.action_space}. Use it "
                        "on a continuous-action domain (--domain kitchen), or ptgm / ppo here.")
    return env.action_space


def stage_directory(run_dir: str | Path, closed_loop: bool) -> Path:
    """Where `ptgm spirl` writes its skills: RUN_DIR/spirl, or RUN_DIR/spirl-cl for the closed-loop model."""
    return Path(run_dir) / spirl_stage_name(closed_loop)


def train_spirl(config: SpirlConfig) -> dict:
    """`ptgm spirl`: train the skill VAE and skill prior; writes RUN_DIR/spirl[-cl]/skills.pt.

    Every ``eval_every`` steps the held-out windows give the reconstruction error (``val_recon_mse``, decoding
    the posterior mean) and the prior's fit (``val_prior_nll`` = -E_q[log p(z|s)], ``val_prior_kl`` =
    KL(q ‖ p), beside ``val_unit_prior_nll``, the fixed N(0, I)'s), written to metrics.csv and TensorBoard.
    """
    domain = domain_of(config)
    env = domain.make_env(None)
    action_space = check_continuous(env, domain.name)
    out = stage_directory(config.run_dir, config.closed_loop)
    device = distributed.resolve_device(config.device)
    distributed.setup(device)
    previous = distributed.prepare_stage_once(out, config, config.stage_name, dataset_inputs(config))
    if previous is not None:
        return previous
    seed_everything(config.seed)
    batch = distributed.share_of(config.batch_size)

    def prepare(data: TrajectoryData) -> Rows:
        data.check_observation_size(env.observation_space.shape[0], f"the {domain.name} environment")
        if data.actions.shape[1:] != action_space.shape:
            raise PTGMError(f"The dataset's actions have shape {data.actions.shape[1:]} but the {domain.name} "
                            f"environment's have {action_space.shape}; it was recorded for another environment.")
        return Rows(data, {"observations": torch.from_numpy(data.observations).to(device)})

    source = run_dataset_path(config.run_dir, config.dataset or None)
    data = stage_data(source, domain.dataset_observation_key, config.memory_rows, config.val_fraction, config.seed,
                      prepare, batch, rows_of=lambda data, episodes: skill_window_starts(data, config.horizon, episodes),
                      rows_per_episode=lambda lengths: lengths - config.horizon)
    held_out = data.val
    if data.train_transitions == 0 or len(held_out.rows) == 0:
        raise PTGMError(f"No window of {config.horizon} actions fits inside the dataset's "
                        f"{'training' if data.train_transitions == 0 else 'held-out'} episodes; record longer "
                        "episodes or lower --horizon.")
    rng = np.random.default_rng(config.seed)
    val_pick = rng.choice(held_out.rows, size=min(len(held_out.rows), 5000), replace=False)
    val_obs = held_out.tensors["observations"][torch.from_numpy(window_rows(val_pick, config.horizon)).to(device)]
    val_actions = torch.from_numpy(action_windows(held_out.data, val_pick, config.horizon)).to(device)

    model = SkillModel(observation_scale(env.observation_space), action_space.shape[0], config.horizon,
                       config.latent_dim, config.closed_loop, config.lstm_size, config.hidden, config.prior_hidden,
                       config.prior_type, config.prior_components)

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        part = data.sampler.current(rng)
        rows = rng.choice(part.rows, size=batch)
        actions = torch.from_numpy(action_windows(part.data, rows, config.horizon)).to(device)
        states = part.tensors["observations"][torch.from_numpy(window_rows(rows, config.horizon)).to(device)]
        return model.losses(states, actions, config.beta, config.prior_loss)["loss"]

    def validate() -> dict[str, float]:
        terms = model.losses(val_obs, val_actions, config.beta, config.prior_loss)
        q = model.encode(val_actions, val_obs)
        scaled = model.scale(val_obs[:, 0])
        prior = {f"val_{name}": value for name, value in model.prior_metrics(val_obs, val_actions).items()}
        return {"val_loss": terms["loss"].item(), "val_kl": terms["kl"].item(), **prior,
                "val_recon_mse": ((model.reconstruct(val_obs, q.loc) - val_actions) ** 2).mean().item(),
                # Decoding the prior's most likely skill / a sample of it: how good a skill the prior alone
                # proposes for the recorded window (closed loop: along the recorded states).
                "val_prior_mean_mse": ((model.reconstruct(val_obs, model.prior_mode(scaled)) - val_actions) ** 2
                                       ).mean().item(),
                "val_prior_sample_mse": ((model.reconstruct(val_obs, model.prior_sample(scaled)) - val_actions) ** 2
                                         ).mean().item(),
                # Spread of the skills' latents: the scale of the downstream skill space.
                "val_latent_std": q.loc.std(0).mean().item()}

    metrics = fit(model, batch_loss, validate, out=out, steps=config.steps, learning_rate=config.learning_rate,
                  rng=rng, eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
                  resume=config.resume, name=config.stage_name, batch_size=config.batch_size, device=device,
                  amp=config.amp)
    if not distributed.is_main():  # rank 0 writes the skills; the others wait for it, then leave together
        distributed.barrier()
        return metrics
    model.save(out / "skills.pt", fingerprint=data.fingerprint, domain=domain.name)
    # Predicting every action as the dataset mean: the MSE a useless decoder gets.
    mean_action_mse = float(val_actions.var(dim=(0, 1), unbiased=False).mean())
    summary = {**metrics, "mean_action_mse": mean_action_mse, "train_windows": data.train_transitions,
               "val_windows": int(len(held_out.rows)), "fingerprint": data.fingerprint}
    mark_stage_done(out, config, summary)
    distributed.barrier()
    logger.info(f"[{config.stage_name}] held-out reconstruction MSE {metrics['val_recon_mse']:.4f} (predicting the "
                f"mean action: {mean_action_mse:.4f}); prior NLL {metrics['val_prior_nll']:.2f} nats (N(0, I): "
                f"{metrics['val_unit_prior_nll']:.2f}), KL(q ‖ p) {metrics['val_prior_kl']:.2f} nats")
    return summary


def load_skills(run_dir: str | Path, domain: str, check_dataset: bool = False, closed_loop: bool = False) -> SkillModel:
    """The finished skill model of ``RUN_DIR/spirl`` (``closed_loop``: ``RUN_DIR/spirl-cl``), frozen, eval mode.

    With ``check_dataset`` the dataset it was trained on is read again and its fingerprint
    compared, so skills from a since-regenerated or different dataset give a clear error.
    """
    directory = stage_directory(run_dir, closed_loop)
    flag = " --closed-loop" if closed_loop else ""
    fix = f"Train them with `ptgm spirl --run-dir {run_dir} --domain {domain}{flag}`."
    done = stage_done(directory)
    recorded = done["config"] if done is not None else {}
    dataset = recorded.get("dataset") or None
    plugin = get_domain(domain, dataset=dataset, goal_keys=tuple(recorded.get("goal_keys") or ()))
    check_continuous(plugin.make_env(None), domain)
    if done is None:
        raise PTGMError(f"No finished SPiRL{' closed-loop' if closed_loop else ''} skills in {directory}. {fix}")
    model, ckpt = SkillModel.load(directory / "skills.pt")
    model.dataset_fingerprint = ckpt.get("fingerprint")
    if ckpt.get("domain") != domain:
        raise PTGMError(f"The SPiRL skills in {directory} are for {ckpt.get('domain')}, not {domain}. {fix}")
    if model.closed_loop != closed_loop:
        raise PTGMError(f"The SPiRL skills in {directory} are {'closed' if model.closed_loop else 'open'}-loop, "
                        f"not {'closed' if closed_loop else 'open'}-loop. {fix[:-1]} --force`.")
    if check_dataset:
        data = load_run_dataset(run_dir, dataset, plugin.dataset_observation_key)
        if data.fingerprint != model.dataset_fingerprint:
            raise PTGMError(f"The SPiRL skills in {directory} were trained on dataset {model.dataset_fingerprint}, but "
                            f"{dataset or 'the run dataset'} is now dataset {data.fingerprint}. Retrain them with "
                            f"`ptgm spirl --run-dir {run_dir} --domain {domain}{flag} --force`.")
    return model.requires_grad_(False)


class SkillEnv(gym.Wrapper):
    """Skill actions, following :class:`ptgm.hrl.wrapper.GoalSelectionEnv`'s conventions.

    The action is a skill latent squashed by tanh, ``a ∈ [-1, 1]^latent_dim`` (what SB3's SAC
    outputs); one step runs skill z = atanh(a) for H environment steps, stopping early when the episode
    ends: an open-loop skill's H actions are decoded at once, a closed-loop skill's each from the state it
    is taken in. Actions are clipped to the task's box. The reward is the task reward summed over those
    steps; ``info["env_steps"]`` says how many environment steps were taken.

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
        self._obs: np.ndarray | None = None  # the state the next closed-loop action is decoded from

    @staticmethod
    def latent(action) -> np.ndarray:
        """The skill latent z = atanh(a) of a squashed action."""
        return np.arctanh(np.clip(np.asarray(action, np.float64), -1 + ATANH_EPS, 1 - ATANH_EPS)).astype(np.float32)

    def decode(self, action) -> np.ndarray:
        """The ``(H, action_dim)`` environment actions of open-loop skill ``action`` (clipped to the action box)."""
        with torch.inference_mode():
            actions = self.skills.decode(torch.as_tensor(self.latent(action)).reshape(1, -1))[0]
        return np.clip(actions.numpy(), self._low, self._high)

    def decode_step(self, action, obs: np.ndarray) -> np.ndarray:
        """The environment action closed-loop skill ``action`` takes at raw observation ``obs`` (clipped)."""
        with torch.inference_mode():
            low = self.skills.decode_step(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1),
                                          torch.as_tensor(self.latent(action)).reshape(1, -1))[0]
        return np.clip(low.numpy(), self._low, self._high)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action):
        planned = None if self.skills.closed_loop else self.decode(action)
        total_reward = 0.0
        for steps in range(1, self.horizon + 1):
            low_action = self.decode_step(action, self._obs) if planned is None else planned[steps - 1]
            obs, reward, terminated, truncated, info = self.env.step(low_action)
            self._obs = obs
            total_reward += float(reward)
            if terminated or truncated:
                break
        info = dict(info, env_steps=steps, goal=-1)
        return obs, total_reward, terminated, truncated, info


class SkillPriorPolicy:
    """The skill prior alone as a policy over SkillEnv's squashed skills (no RL, no SAC actor): each skill is
    drawn from p(z | s), or is its most likely one; what pre-training alone does in a task.

    ``predict`` takes the *scaled* observation (what ``ScaledObservation(SkillEnv(...))`` returns) and
    answers ``(tanh(z), None)`` as SB3's models do, so :func:`ptgm.train.evaluate_model` can evaluate it.
    """

    def __init__(self, skills: SkillModel):
        self.skills = skills.eval()

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        obs = torch.as_tensor(np.asarray(observation, np.float32))
        single = obs.ndim == 1
        with torch.inference_mode():
            obs = obs.reshape(1, -1) if single else obs
            z = self.skills.prior_mode(obs) if deterministic else self.skills.prior_sample(obs)
        action = torch.tanh(z).numpy()
        return (action[0] if single else action), None


class SpirlSAC(SAC):
    """SAC over skill latents with SPiRL's prior-regularised objective.

    Both the actor loss and the critic target use α·(log π(z|s) − log p(z|s)), a
    one-sample estimate of KL(π(z|s) ‖ p(z|s)), in place of SAC's α·log π(a|s); α is tuned
    so the divergence tracks ``target_divergence``. z is the actor's Gaussian sample before
    tanh, which :class:`SkillEnv` recovers from the squashed action, so both densities are
    over the latent the decoder gets (the prior a Gaussian, or a mixture, whose log-density is exact too). The prior is frozen and not saved in the
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
        log_p = self.skills.prior_log_prob_scaled(observations, z)
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
    if model.skills.prior_type != "gaussian":
        raise PTGMError(f"A {model.skills.prior_type} skill prior cannot be copied into SAC's Gaussian actor: pass "
                        "--no-init-from-prior, or train the skills with --prior-type gaussian.")
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
