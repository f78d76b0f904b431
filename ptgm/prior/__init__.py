"""Stage 3: the goal prior π_p(goal | s), a classifier over the N cluster goals."""

from ptgm.prior.model import GoalPrior

__all__ = ["GoalPrior"]
