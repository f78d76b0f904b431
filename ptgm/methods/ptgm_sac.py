"""PTGM with discrete SAC over the cluster goals, KL(policy ‖ prior) in place of the entropy term (the
authors' Kitchen learner, :mod:`ptgm.hrl.sac`)."""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv

from ptgm.hrl.pretrained import Pretrained
from ptgm.hrl.sac import GoalSAC
from ptgm.methods.base import sb3_common_kwargs
from ptgm.methods.ptgm import PTGMMethod
from ptgm.settings import TrainConfig


class PTGMSAC(PTGMMethod):
    name = "ptgm-sac"
    description = "discrete SAC over the N cluster goals, KL(policy ‖ prior) regularised, α tuned to a target"
    tuning_alternatives = (("learning_rate", 1e-4), ("target_divergence", 2.0))

    def make_model(self, config: TrainConfig, vec_env: VecEnv, pieces: Pretrained,
                   tensorboard_log: str | None = None) -> GoalSAC:
        # Counts, learning starts and the buffer are in high-level steps.
        return GoalSAC("MlpPolicy", vec_env, prior=pieces.prior, target_divergence=config.target_divergence,
                       init_from_prior=config.init_from_prior, batch_size=256,
                       learning_starts=config.sac_learning_starts // config.k,
                       buffer_size=config.env_steps // config.k + config.n_envs,
                       policy_kwargs=dict(net_arch=self.hidden(config, pieces)),
                       **sb3_common_kwargs(config, tensorboard_log))

    def model_class(self) -> type[GoalSAC]:
        return GoalSAC

    def frozen_objects(self, pieces: Pretrained) -> dict:
        return {"prior": pieces.prior}


METHOD = PTGMSAC()
