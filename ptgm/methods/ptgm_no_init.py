"""An ablation of PTGM that changes one thing: the policy starts freshly initialised instead of as a copy of
the goal prior, the KL(prior ‖ policy) term kept."""

from __future__ import annotations

from ptgm.methods.ptgm import PTGMMethod


class PTGMNoInit(PTGMMethod):
    name = "ptgm-no-init"
    description = "PTGM with a freshly initialised policy: the KL term kept, no initialisation from the prior"
    init_from_prior = False


METHOD = PTGMNoInit()
