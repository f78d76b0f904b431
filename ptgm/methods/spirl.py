"""SPiRL (Pertsch et al., 2020): SAC over the latents of skills pre-trained with `ptgm spirl`, regularised
towards the skill prior (continuous actions only)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from ptgm.baselines.spirl import SkillEnv, SkillModel, SpirlSAC, load_skills
from ptgm.hrl.wrapper import ScaledObservation
from ptgm.methods.base import Method, Plan, sac_kwargs
from ptgm.settings import TrainConfig


class Spirl(Method):
    name = "spirl"
    description = "SAC over SPiRL's pre-trained skills, H env steps each (continuous actions)"
    pieces = "skills"
    high_level = True
    continuous_actions = True

    def load_pieces(self, config: TrainConfig, check_dataset: bool = True) -> SkillModel:
        return load_skills(config.run_dir, config.domain, check_dataset=check_dataset)

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
        return SpirlSAC("MlpPolicy", vec_env, skills=pieces, init_from_prior=config.init_from_prior,
                        target_divergence=config.target_divergence, **kwargs)

    def plan(self, high_action, observation: np.ndarray, config: TrainConfig, pieces: SkillModel) -> Plan:
        """The H actions skill ``high_action`` decodes to, run open-loop."""
        from ptgm.domains import domain_of

        space = domain_of(config).make_env(config.task).action_space
        with torch.inference_mode():
            actions = pieces.decode(torch.as_tensor(SkillEnv.latent(high_action)).reshape(1, -1))[0].numpy()
        actions = np.clip(actions, space.low, space.high)
        # Plan.act counts the step before acting, so the step's action is at index taken - 1.
        plan = Plan(lambda obs: actions[plan.taken - 1], len(actions), {"goal": -1, "caption": "skill"})
        return plan

    def model_class(self) -> type[SpirlSAC]:
        return SpirlSAC

    def frozen_objects(self, pieces: SkillModel) -> dict:
        return {"skills": pieces}


METHOD = Spirl()
