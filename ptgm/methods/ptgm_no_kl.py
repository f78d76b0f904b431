"""An ablation of PTGM that changes one thing: α = 0 (no KL(prior ‖ policy) in the reward), the policy still
starting as a copy of the goal prior."""

from __future__ import annotations

from ptgm.methods.ptgm import PTGMMethod


class PTGMNoKL(PTGMMethod):
    name = "ptgm-no-kl"
    description = "PTGM with α = 0: initialised from the goal prior, no KL term"
    kl_to_prior = False
    tuning_alternatives = (("learning_rate", 1e-4), ("ent_coef", 0.0))  # no KL term to weigh


METHOD = PTGMNoKL()
