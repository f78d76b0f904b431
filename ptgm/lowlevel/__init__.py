"""Stage 1: the goal-conditioned low-level policy (behaviour cloning with hindsight relabeling)."""

from ptgm.lowlevel.policy import GoalConditionedPolicy

__all__ = ["GoalConditionedPolicy"]
