"""Stage 0: task-agnostic datasets (generation, Minari I/O, hindsight relabeling)."""

from ptgm.data.dataset import TrajectoryData, load_minari, write_minari
from ptgm.data.relabel import hindsight_goal_rows

__all__ = ["TrajectoryData", "load_minari", "write_minari", "hindsight_goal_rows"]
