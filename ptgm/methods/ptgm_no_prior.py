"""The no-prior ablation of PTGM: the same PPO over the cluster goals with α = 0 and a randomly initialised
policy."""

from __future__ import annotations

from ptgm.methods.ptgm import PTGMMethod


class PTGMNoPrior(PTGMMethod):
    name = "ptgm-no-prior"
    description = "PTGM without the goal prior: α = 0, no initialisation from the prior"
    use_prior = False


METHOD = PTGMNoPrior()
