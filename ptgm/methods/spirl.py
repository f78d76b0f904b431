"""SPiRL (Pertsch et al., 2020): SAC over the latents of skills pre-trained with `ptgm spirl`, regularised
towards the skill prior (continuous actions only). This is the paper's open-loop model; ``spirl-cl`` is the
closed-loop one its repository recommends."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from ptgm.baselines.spirl import SkillEnv, SkillModel, SpirlSAC, load_skills
from ptgm.hrl.wrapper import ScaledObservation
from ptgm.methods.base import Method, Plan, sac_kwargs
from ptgm.settings import TrainConfig

#: SPiRL's Kitchen critic (clvrai/spirl ``configs/hrl/kitchen/base_conf.py``: 5 processing layers of 256 after
#: an input layer), used when ``--hidden`` is unset; the actor takes the prior's widths to start as its copy.
CRITIC_HIDDEN = (256,) * 6


class Spirl(Method):
    name = "spirl"
    description = "SAC over SPiRL's pre-trained open-loop skills, H env steps each (continuous actions)"
    pieces = "skills"
    high_level = True
    continuous_actions = True
    #: Which skill model it acts with: the open-loop one of RUN_DIR/spirl, or the closed-loop one of RUN_DIR/spirl-cl.
    closed_loop = False
    tuning_alternatives = (("learning_rate", 1e-4), ("target_divergence", 2.0))

    def load_pieces(self, config: TrainConfig, check_dataset: bool = True) -> SkillModel:
        return load_skills(config.run_dir, config.domain, check_dataset=check_dataset, closed_loop=self.closed_loop)

    def wrap_env(self, env: gym.Env, config: TrainConfig, pieces: SkillModel) -> gym.Env:
        return ScaledObservation(SkillEnv(env, pieces))

    def hidden(self, config: TrainConfig, pieces: SkillModel) -> list[int]:
        return list(config.hidden or pieces.prior_hidden)

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces: SkillModel,
                   tensorboard_log: str | None = None) -> SpirlSAC:
        # Learning starts and the buffer count skill steps, one update per skill step.
        skill_steps = config.env_steps // pieces.horizon
        kwargs = dict(sac_kwargs(config, self.hidden(config, pieces), tensorboard_log),
                      learning_starts=config.sac_learning_starts // pieces.horizon,
                      buffer_size=skill_steps + config.n_envs, gradient_steps=-1)
        if not config.hidden:
            kwargs["policy_kwargs"]["net_arch"]["qf"] = list(CRITIC_HIDDEN)
        return SpirlSAC("MlpPolicy", vec_env, skills=pieces, init_from_prior=config.init_from_prior,
                        target_divergence=config.target_divergence, **kwargs)

    def plan(self, high_action, observation: np.ndarray, config: TrainConfig, pieces: SkillModel) -> Plan:
        """The H actions skill ``high_action`` stands for: decoded at once (open loop), or each from the
        observation it is taken at (closed loop)."""
        from ptgm.domains import domain_of

        space = domain_of(config).make_env(config.task).action_space
        z = torch.as_tensor(SkillEnv.latent(high_action)).reshape(1, -1)
        info = {"goal": -1, "caption": "skill"}
        if pieces.closed_loop:
            def act(obs: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    action = pieces.decode_step(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1), z)[0]
                return np.clip(action.numpy(), space.low, space.high)

            return Plan(act, pieces.horizon, info)
        with torch.inference_mode():
            actions = np.clip(pieces.decode(z)[0].numpy(), space.low, space.high)
        # Plan.act counts the step before acting, so the step's action is at index taken - 1.
        plan = Plan(lambda obs: actions[plan.taken - 1], len(actions), info)
        return plan

    def model_class(self) -> type[SpirlSAC]:
        return SpirlSAC

    def frozen_objects(self, pieces: SkillModel) -> dict:
        return {"skills": pieces}


METHOD = Spirl()
