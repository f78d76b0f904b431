"""Gymnasium registration of ptgm's task environments.

After :func:`register_envs`, the two domains can be made by id::

    import gymnasium as gym
    from ptgm.envs import register_envs

    register_envs()
    env = gym.make("ptgm/Crafter-v0", task="collect_stone")
    env = gym.make("ptgm/Kitchen-v0", task="mkbl", render_mode="rgb_array")

Every keyword of the env's constructor (``task``, ``max_steps``, ``render_mode``, ...)
passes through :func:`gymnasium.make`.
"""

from __future__ import annotations

import gymnasium as gym

CRAFTER_ID = "ptgm/Crafter-v0"
KITCHEN_ID = "ptgm/Kitchen-v0"

# String entry points: gymnasium imports the module only when an env is made, so
# registering costs nothing (no torch, crafter, mujoco or gymnasium-robotics import).
_ENTRY_POINTS: dict[str, str] = {
    CRAFTER_ID: "ptgm.domains.crafter.env:CrafterEnv",
    KITCHEN_ID: "ptgm.domains.kitchen.env:KitchenEnv",
}


def register_envs() -> None:
    """Register ``ptgm/Crafter-v0`` and ``ptgm/Kitchen-v0`` with Gymnasium (idempotent).

    No ``max_episode_steps``: both envs truncate themselves at their ``max_steps``
    (the task's limit, e.g. 500 for Crafter's ``collect_stone``, 1000 for
    ``collect_iron``; 280 for Kitchen). A ``TimeLimit`` from the registration would
    use one fixed limit for every task and cut an episode short whenever
    ``max_steps=`` asks for more. ``gym.make(..., max_episode_steps=N)`` still adds one.
    """
    for env_id, entry_point in _ENTRY_POINTS.items():
        # Re-registering an id makes gymnasium warn that it overrides it; skip instead.
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
