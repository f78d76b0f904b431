"""The no-prior ablation of PTGM: the same PPO over the cluster goals with α = 0 and a randomly initialised
policy."""

from __future__ import annotations

from ptgm.methods.ptgm import PTGMMethod


class PTGMNoPrior(PTGMMethod):
    name = "ptgm-no-prior"
    description = "PTGM without the goal prior: α = 0, no initialisation from the prior"
    kl_to_prior = False
    tuning_alternatives = (("learning_rate", 1e-4), ("ent_coef", 0.0))  # no KL term to weigh
    init_from_prior = False


METHOD = PTGMNoPrior()
