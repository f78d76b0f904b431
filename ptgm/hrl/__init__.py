"""Stage 4: downstream hierarchical RL over the N cluster goals, regularised by the goal prior."""

from ptgm.hrl.ppo import PTGMPPO, kl_prior_to_policy
from ptgm.hrl.wrapper import GoalSelectionEnv, ScaledObservation

__all__ = ["PTGMPPO", "GoalSelectionEnv", "ScaledObservation", "kl_prior_to_policy"]
