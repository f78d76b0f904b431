"""Goal features and pictures of Crafter's symbolic observations."""

from __future__ import annotations

import functools

import numpy as np
from crafter import constants, engine

from ptgm.domains.crafter.env import (
    DAYLIGHT_OFFSET,
    FACING_OFFSET,
    FACINGS,
    INVENTORY_OFFSET,
    ITEMS,
    MATERIALS,
    N_CHANNELS,
    OBJECTS,
    OBS_DIM,
    SLEEP_OFFSET,
    VIEW_H,
    VIEW_SIZE,
    VIEW_W,
)

#: Goal feature layout: inventory/9 (16) | material fractions in view (12) |
#: creature/object counts in view, capped at 3, /3 (6) | one-hot of what the player faces (18) | sleeping (1).
GOAL_DIM = len(ITEMS) + N_CHANNELS + N_CHANNELS + 1
_CENTER_ROW, _CENTER_COL = VIEW_H // 2, VIEW_W // 2


def check_observations(observations: np.ndarray) -> np.ndarray:
    observations = np.asarray(observations)
    if observations.ndim == 1:
        observations = observations[None]
    if observations.ndim != 2 or observations.shape[1] != OBS_DIM:
        raise ValueError(
            f"Crafter observations must have shape (batch, {OBS_DIM}); got {observations.shape}. "
            "Was this data made by another domain or another version of ptgm's Crafter observation?"
        )
    return observations


def goal_features(observations: np.ndarray) -> np.ndarray:
    """Compact, clusterable summary of what a state *is*: what you hold, what is around, what you face."""
    obs = check_observations(observations)
    batch = obs.shape[0]
    view = obs[:, :VIEW_SIZE].reshape(batch, VIEW_H, VIEW_W, N_CHANNELS).astype(np.float32)
    inventory = obs[:, INVENTORY_OFFSET:FACING_OFFSET].astype(np.float32) / 9.0
    counts = view.sum(axis=(1, 2))
    materials = counts[:, : len(MATERIALS)] / (VIEW_H * VIEW_W)
    creatures = np.minimum(counts[:, len(MATERIALS) :], 3.0) / 3.0
    facing_index = obs[:, FACING_OFFSET : FACING_OFFSET + 4].argmax(axis=1)
    offsets = np.asarray(FACINGS)[facing_index]  # (dx, dy)
    faced = view[np.arange(batch), _CENTER_ROW + offsets[:, 1], _CENTER_COL + offsets[:, 0]]
    sleeping = obs[:, SLEEP_OFFSET : SLEEP_OFFSET + 1].astype(np.float32)
    return np.concatenate([inventory, materials, creatures, faced, sleeping], axis=1).astype(np.float32)


def compose_goal(goals: np.ndarray, observations: np.ndarray) -> np.ndarray:
    """Cluster goals that ask for no loss: each inventory entry at least what the player holds now, health as now.

    A cluster goal is one dataset state, with that state's whole inventory. Taken as it is, a goal from a state
    with 2 wood asks a player who holds 5 to lose 3, and one from a state without a pickaxe asks a player who has
    one to lose it; play never does either (materials go only into crafting), so the low-level policy, which is
    given the change its goal asks for, does something arbitrary. What a cluster goal holds beyond the current
    inventory (a tool, more stone, a full drink bar) is what it asks for; health is no goal of its own.
    """
    goals = np.array(goals, dtype=np.float32, copy=True)
    current = goal_features(observations)
    n_items = len(ITEMS)
    goals[:, :n_items] = np.maximum(goals[:, :n_items], current[:, :n_items])
    goals[:, 0] = current[:, 0]  # health (ITEMS[0])
    return goals


def describe_goal(observation: np.ndarray) -> str:
    """A one-line caption: what the player faces and holds (for codebook pictures)."""
    feats = goal_features(observation)[0]
    faced = feats[len(ITEMS) + N_CHANNELS : len(ITEMS) + 2 * N_CHANNELS]
    names = list(MATERIALS) + list(OBJECTS)
    face = names[int(faced.argmax())] if faced.max() > 0 else "edge"
    held = [f"{n}{int(round(v * 9))}" for n, v in zip(ITEMS[4:], feats[4 : len(ITEMS)]) if v > 0]
    return f"faces {face}; " + (" ".join(held) if held else "empty-handed")


@functools.lru_cache(maxsize=1)
def _textures() -> engine.Textures:
    return engine.Textures(constants.root / "assets")


_OBJECT_TEXTURES = {"cow": "cow", "zombie": "zombie", "skeleton": "skeleton", "arrow": "arrow-down",
                    "plant": "plant", "ripe_plant": "plant-ripe"}
_PLAYER_TEXTURES = {(-1, 0): "player-left", (1, 0): "player-right", (0, -1): "player-up", (0, 1): "player-down"}


def render_observation(observation: np.ndarray, unit: int = 16) -> np.ndarray:
    """Draw a symbolic observation with Crafter's textures: local view on top, inventory below."""
    obs = check_observations(observation)[0]
    textures = _textures()
    view = obs[:VIEW_SIZE].reshape(VIEW_H, VIEW_W, N_CHANNELS)
    item_rows = int(np.ceil(len(ITEMS) / VIEW_W))
    canvas = np.full(((VIEW_H + item_rows) * unit, VIEW_W * unit, 3), 127, np.uint8)
    for row in range(VIEW_H):
        for col in range(VIEW_W):
            cell = view[row, col]
            if not cell[: len(MATERIALS)].any():
                continue
            names = [MATERIALS[int(cell[: len(MATERIALS)].argmax())]]
            names += [_OBJECT_TEXTURES[o] for o, on in zip(OBJECTS, cell[len(MATERIALS) :]) if on]
            for name in names:
                _paste(canvas, row * unit, col * unit, textures.get(name, (unit, unit)))
    facing = FACINGS[int(obs[FACING_OFFSET : FACING_OFFSET + 4].argmax())]
    player = "player-sleep" if obs[SLEEP_OFFSET] else _PLAYER_TEXTURES[facing]
    _paste(canvas, _CENTER_ROW * unit, _CENTER_COL * unit, textures.get(player, (unit, unit)))
    # Darken for night like Crafter does, so day and night goals look different.
    light = 0.35 + 0.65 * float(obs[DAYLIGHT_OFFSET]) / 9.0
    canvas[: VIEW_H * unit] = (canvas[: VIEW_H * unit] * light).astype(np.uint8)
    inventory = {name: int(v) for name, v in zip(ITEMS, obs[INVENTORY_OFFSET:FACING_OFFSET])}
    items = engine.ItemView(textures, [VIEW_W, item_rows])(inventory, np.array([unit, unit]))
    canvas[VIEW_H * unit :] = items.transpose(1, 0, 2)
    return canvas


def _paste(canvas: np.ndarray, top: int, left: int, texture: np.ndarray) -> None:
    """Alpha-blend a Crafter texture (stored [x, y, c]) onto an image ([y, x, c])."""
    texture = texture.transpose(1, 0, 2)
    h, w = texture.shape[:2]
    region = canvas[top : top + h, left : left + w]
    if texture.shape[-1] == 4:
        alpha = texture[..., 3:].astype(np.float32) / 255.0
        region[:] = (alpha * texture[..., :3] + (1 - alpha) * region).astype(np.uint8)
    else:
        region[:] = texture[..., :3]
