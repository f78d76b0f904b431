"""Crafter as a Gymnasium environment with a symbolic observation and achievement tasks.

Observation layout (a flat ``uint8`` vector of length :data:`OBS_DIM`; every entry is
a small integer, so dividing by ``observation_space.high`` puts it in [0, 1]):

==========  ======================================  =====================================
offset      what                                    values
==========  ======================================  =====================================
0           local view, 7 rows x 9 columns x 18     one-hot: channels 0-11 the material
            channels, row-major ``[y, x, c]``        (``MATERIALS``), 12-17 the creature or
            (the 9x7 area Crafter draws; player     object on the cell (``OBJECTS``); a cell
            at row 3, column 4)                     outside the world is all zeros
1134        inventory, 16 entries (``ITEMS``)       0-9, health/food/drink/energy included
1150        facing direction (left/right/up/down)   one-hot
1154        sleeping                                0/1
1155        daylight                                0-9 (quantised)
==========  ======================================  =====================================

No pixels are rendered to compute it; ``render_mode="rgb_array"`` gives Crafter's own
64x64 (or ``size``) frame on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import crafter
import gymnasium as gym
import numpy as np
from crafter import constants, objects

from ptgm.domains.crafter import worldgen
from ptgm.utils import PTGMError

MATERIALS: tuple[str, ...] = tuple(constants.materials)
OBJECTS: tuple[str, ...] = ("cow", "zombie", "skeleton", "arrow", "plant", "ripe_plant")
ITEMS: tuple[str, ...] = tuple(constants.items)
ACHIEVEMENTS: tuple[str, ...] = tuple(constants.achievements)
ACTIONS: tuple[str, ...] = tuple(constants.actions)
FACINGS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))

VIEW_W, VIEW_H = 9, 7
N_CHANNELS = len(MATERIALS) + len(OBJECTS)
VIEW_SIZE = VIEW_H * VIEW_W * N_CHANNELS
INVENTORY_OFFSET = VIEW_SIZE
FACING_OFFSET = INVENTORY_OFFSET + len(ITEMS)
SLEEP_OFFSET = FACING_OFFSET + 4
DAYLIGHT_OFFSET = SLEEP_OFFSET + 1
OBS_DIM = DAYLIGHT_OFFSET + 1
DAYLIGHT_LEVELS = 9


@dataclass(frozen=True)
class CrafterTask:
    """A downstream task.

    ``achievement`` names one achievement, or an ordered chain of them (``"collect_wood,place_table"``): the
    reward is 1 each time the next achievement of the chain unlocks, and the episode ends, a success, at the
    last. With ``crafter_reward`` it is the full game as the Crafter benchmark plays it instead: Crafter's own
    reward (+1 the first time each achievement unlocks in an episode, ±0.1 per health point gained or lost),
    no success, the episode ending at death or ``max_steps``.
    """

    achievement: str
    start_inventory: dict[str, int] = field(default_factory=dict)
    max_steps: int = 500
    crafter_reward: bool = False

    @property
    def chain(self) -> tuple[str, ...]:
        """The achievements to unlock, in order (none for the Crafter benchmark)."""
        return tuple(self.achievement.split(",")) if self.achievement else ()


#: Step limit of a task that ends in each achievement from an empty inventory, where 500 is too short for the
#: chain of tools before it: about 1.3× the 90th percentile of the step at which the scripted player first
#: unlocks it (results/crafter/player-10k.md: iron 1,185, iron pickaxe 1,382, iron sword 1,878, diamond 2,832),
#: rounded up to 500.
ACHIEVEMENT_STEPS: dict[str, int] = {
    "collect_iron": 2000,
    "make_iron_pickaxe": 2000,
    "make_iron_sword": 2500,
    "collect_diamond": 4000,
}
#: The Crafter benchmark's episode length (Crafter's own default).
CRAFTER_EPISODE_STEPS = 10_000

#: Presets mirroring the paper's Minecraft tasks (log, water bucket, cobblestone, iron ore, spider), the long
#: chains from an empty inventory, and the Crafter benchmark itself (``crafter``).
TASK_PRESETS: dict[str, CrafterTask] = {
    "collect_wood": CrafterTask("collect_wood", {}, 500),
    "collect_drink": CrafterTask("collect_drink", {}, 500),
    "collect_stone": CrafterTask("collect_stone", {"wood_pickaxe": 1}, 500),
    "collect_iron": CrafterTask("collect_iron", {}, ACHIEVEMENT_STEPS["collect_iron"]),
    "make_iron_pickaxe": CrafterTask("make_iron_pickaxe", {}, ACHIEVEMENT_STEPS["make_iron_pickaxe"]),
    "collect_diamond": CrafterTask("collect_diamond", {}, ACHIEVEMENT_STEPS["collect_diamond"]),
    "defeat_zombie": CrafterTask("defeat_zombie", {"wood_sword": 1}, 500),
    "crafter": CrafterTask("", {}, CRAFTER_EPISODE_STEPS, crafter_reward=True),
}


def parse_inventory(items: tuple[str, ...] | list[str]) -> dict[str, int]:
    """``("wood_pickaxe=1", "stone=3")`` as ``{"wood_pickaxe": 1, "stone": 3}``, with a clear error listing the
    items for an unknown name or an amount Crafter cannot hold (0 to 9)."""
    inventory = {}
    for item in items:
        name, sep, amount = item.partition("=")
        if name not in ITEMS:
            raise PTGMError(f"Unknown Crafter item {name!r} in --start-inventory {item}. Known: {', '.join(ITEMS)}.")
        if not sep or not amount.isdigit() or not 0 <= int(amount) <= 9:
            raise PTGMError(f"--start-inventory {item}: give each item as NAME=N with N from 0 to 9 (e.g. "
                            "wood_pickaxe=1).")
        inventory[name] = int(amount)
    return inventory


def resolve_task(task: str | CrafterTask, start_inventory: dict[str, int] | None = None) -> CrafterTask:
    """A preset by name, any Crafter achievement or comma-separated chain of them by name, or a
    :class:`CrafterTask` as is; ``start_inventory`` adds to (or overrides) the task's starting items."""
    if isinstance(task, CrafterTask):
        spec = task
    elif task in TASK_PRESETS:
        spec = TASK_PRESETS[task]
    else:
        names = task.split(",") if task else [""]
        unknown = [name for name in names if name not in ACHIEVEMENTS]
        if unknown:
            raise PTGMError(
                f"Unknown Crafter task {task!r}" + (f" (unknown achievement {unknown[0]!r})" if len(names) > 1 else "")
                + f". Use a preset ({', '.join(TASK_PRESETS)}), any Crafter achievement ({', '.join(ACHIEVEMENTS)}), "
                "or an ordered chain of achievements separated by commas (e.g. collect_wood,place_table).")
        if len(set(names)) < len(names):
            raise PTGMError(f"The Crafter task {task!r} names an achievement twice; each step of a chain is a "
                            "different achievement.")
        spec = CrafterTask(task, {}, max(ACHIEVEMENT_STEPS.get(name, 500) for name in names))
    if start_inventory:
        spec = replace(spec, start_inventory={**spec.start_inventory, **start_inventory})
    unknown = [name for name in spec.chain if name not in ACHIEVEMENTS]
    if unknown or not (spec.chain or spec.crafter_reward):
        raise PTGMError(f"Unknown Crafter achievement(s) {unknown or [spec.achievement]}. Known: {', '.join(ACHIEVEMENTS)}.")
    unknown = set(spec.start_inventory) - set(ITEMS)
    if unknown:
        raise PTGMError(f"Unknown Crafter inventory item(s) {sorted(unknown)}. Known: {', '.join(ITEMS)}.")
    return spec


def observation_space() -> gym.spaces.Box:
    high = np.ones(OBS_DIM, np.uint8)
    high[INVENTORY_OFFSET:FACING_OFFSET] = 9
    high[DAYLIGHT_OFFSET] = DAYLIGHT_LEVELS
    return gym.spaces.Box(low=np.zeros(OBS_DIM, np.uint8), high=high, dtype=np.uint8)


class _HeadlessCrafter(crafter.Env):
    """Crafter without drawing a frame every step (we compute our own observation)."""

    def _obs(self):
        return None

    def reset(self):
        # Crafter's own reset, with the grid-vectorised generator (same worlds, ~4x faster).
        center = (self._world.area[0] // 2, self._world.area[1] // 2)
        self._episode += 1
        self._step = 0
        self._world.reset(seed=hash((self._seed, self._episode)) % (2**31 - 1))
        self._update_time()
        self._player = objects.Player(self._world, center)
        self._last_health = self._player.health
        self._world.add(self._player)
        self._unlocked = set()
        worldgen.generate_world(self._world, self._player)

    def step(self, action):
        # Crafter's own step, the same updates in the same order, faster: the distance test in plain
        # integers instead of numpy per object, each chunk's grass and path counted for all chunks at
        # once, and no semantic map in the info (nothing here reads it; it cost ~10% of a step).
        self._step += 1
        self._update_time()
        player = self._player
        player.action = constants.actions[action]
        reach = 2 * int(max(self._view))
        for obj in self._world.objects:
            (px, py), (ox, oy) = player.pos.tolist(), obj.pos.tolist()
            if abs(ox - px) + abs(oy - py) < reach:
                obj.update()
        if self._step % 10 == 0:
            self._chunk_space = {name: self._count_per_chunk(name) for name in ("grass", "path")}
            for chunk, objs in self._world.chunks.items():
                self._balance_chunk(chunk, objs)
        reward = (player.health - self._last_health) / 10
        self._last_health = player.health
        unlocked = {name for name, count in player.achievements.items() if count > 0 and name not in self._unlocked}
        if unlocked:
            self._unlocked |= unlocked
            reward += 1.0
        dead = player.health <= 0
        over = self._length and self._step >= self._length
        info = {"inventory": player.inventory.copy(), "achievements": player.achievements.copy(),
                "discount": 1 - float(dead), "player_pos": player.pos, "reward": reward}
        return None, reward if self._reward else 0.0, dead or over, info

    def _count_per_chunk(self, material: str) -> np.ndarray:
        """``[i, j]``: cells of ``material`` in the chunk starting at (i, j) times the chunk size."""
        (size_x, size_y), cells = self._world._chunk_size, self._world._mat_map == self._world._mat_ids[material]
        per_column = np.add.reduceat(cells.astype(np.int64), np.arange(0, cells.shape[0], size_x), axis=0)
        return np.add.reduceat(per_column, np.arange(0, cells.shape[1], size_y), axis=1)

    def _balance_chunk(self, chunk, objs):
        # Crafter keeps a chunk's objects in a set (ordered by memory address) and picks a
        # creature to despawn by index into it; sorting by position makes a world replay
        # identically from its seed and actions, which the goal-reaching test relies on.
        super()._balance_chunk(chunk, sorted(objs, key=lambda obj: (int(obj.pos[0]), int(obj.pos[1]))))

    def _balance_object(self, chunk, objs, cls, material, span_dist, despan_dist, spawn_prob, despawn_prob, ctor,
                        target_fn):
        # Crafter's own, with the chunk's count of ``material`` from the step's table (materials do not
        # change while chunks are balanced) and its cells listed only when a creature spawns.
        xmin, xmax, ymin, ymax = chunk
        random = self._world.random
        creatures = [obj for obj in objs if isinstance(obj, cls)]
        size_x, size_y = self._world._chunk_size
        space = int(self._chunk_space[material][xmin // size_x, ymin // size_y])
        target_min, target_max = target_fn(len(creatures), space)
        if len(creatures) < int(target_min) and random.uniform() < spawn_prob:
            xs, ys = np.nonzero(self._world.mask(*chunk, material))
            i = random.randint(0, len(xs))
            pos = np.array((xs[i] + xmin, ys[i] + ymin))
            empty = self._world[pos][1] is None
            away = self._player.distance(pos) >= span_dist
            if empty and away:
                self._world.add(ctor(pos))
        elif len(creatures) > int(target_max) and random.uniform() < despawn_prob:
            obj = creatures[random.randint(0, len(creatures))]
            away = self._player.distance(obj.pos) >= despan_dist
            if away:
                self._world.remove(obj)


_OBJECT_CHANNEL = {
    objects.Cow: len(MATERIALS) + 0,
    objects.Zombie: len(MATERIALS) + 1,
    objects.Skeleton: len(MATERIALS) + 2,
    objects.Arrow: len(MATERIALS) + 3,
}
_PLANT_CHANNEL = len(MATERIALS) + 4
_RIPE_PLANT_CHANNEL = len(MATERIALS) + 5


class CrafterEnv(gym.Env):
    """Crafter with a symbolic observation; a task, or reward-free play when ``task=None``.

    Args:
        task: a preset name, an achievement or chain of achievements, a :class:`CrafterTask`, or ``None``
            for task-agnostic play (reward 0, ends on death or after ``max_steps``).
        max_steps: step limit (truncation); defaults to the task's, or 10,000 for play.
        start_inventory: items held at the start of each episode, on top of the task's own.
        render_mode: ``"rgb_array"`` for Crafter's own pixels from :meth:`render`.
        size: pixel size of rendered frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str | CrafterTask | None = None,
        max_steps: int | None = None,
        render_mode: str | None = None,
        size: int = 64,
        start_inventory: dict[str, int] | None = None,
    ):
        if task is None and start_inventory:
            raise PTGMError("A starting inventory belongs to a task; task-agnostic play starts empty.")
        self.task = None if task is None else resolve_task(task, start_inventory)
        self.max_steps = max_steps or (self.task.max_steps if self.task else 10_000)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self._game = _HeadlessCrafter(size=(size, size), reward=False, length=None)
        self.observation_space = observation_space()
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self._steps = 0
        self._chain_done = 0  # achievements of the task's chain unlocked so far this episode

    # -- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # Crafter seeds each world with hash((seed, episode)); drawing the seed from our
        # own generator makes worlds reproducible from ``reset(seed=...)``.
        self._game._seed = int(self.np_random.integers(2**31 - 1))
        self._game._episode = 0
        self._game.reset()
        self._steps = 0
        self._chain_done = 0
        if self.task is not None:
            for item, amount in self.task.start_inventory.items():
                self._game._player.inventory[item] = amount
        return self._observation(), self._info(set())

    def step(self, action):
        before = dict(self._game._player.achievements)
        _, _, _, game_info = self._game.step(int(action))
        self._steps += 1
        player = self._game._player
        unlocked = {name for name, count in player.achievements.items() if count > before[name]}
        reward, success = 0.0, False
        if self.task is not None and self.task.crafter_reward:
            reward = float(game_info["reward"])  # Crafter's own reward (its env computes it, we keep it)
        elif self.task is not None:
            chain = self.task.chain
            if chain[self._chain_done] in unlocked:
                self._chain_done += 1
                reward = 1.0
            success = self._chain_done == len(chain)
        terminated = success or player.health <= 0
        truncated = (not terminated) and self._steps >= self.max_steps
        info = self._info(unlocked, success)
        if terminated or truncated:  # every achievement the episode unlocked (Crafter's benchmark counts these)
            info["episode_achievements"] = sorted(self._game._unlocked)
        return self._observation(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._game.render()

    # -- helpers ---------------------------------------------------------------
    @property
    def world(self):
        """Crafter's world (map and creatures); scripted players read it."""
        return self._game._world

    @property
    def player(self):
        return self._game._player

    def _info(self, unlocked: set[str], success: bool = False) -> dict:
        return {"achievements": sorted(unlocked), "is_success": success}

    def _observation(self) -> np.ndarray:
        return symbolic_observation(self._game)


#: ``[x, y]``: where in the observation the material channel of view cell (x, y) starts, less one (material ids
#: count from 1), so that adding a cell's material id gives its one-hot entry.
_VIEW_CELL_OFFSET = ((np.arange(VIEW_H)[None, :] * VIEW_W + np.arange(VIEW_W)[:, None]) * N_CHANNELS - 1).astype(np.intp)


def symbolic_observation(game: crafter.Env) -> np.ndarray:
    """The layout described in this module's docstring, computed from Crafter's world state."""
    world, player = game._world, game._player
    obs = np.zeros(OBS_DIM, np.uint8)
    view = obs[:VIEW_SIZE].reshape(VIEW_H, VIEW_W, N_CHANNELS)
    px, py = int(player.pos[0]), int(player.pos[1])
    x0, y0 = px - VIEW_W // 2, py - VIEW_H // 2
    area_w, area_h = world.area
    xs, xe = max(x0, 0), min(x0 + VIEW_W, area_w)
    ys, ye = max(y0, 0), min(y0 + VIEW_H, area_h)
    if xe - xs == VIEW_W and ye - ys == VIEW_H:  # the whole view inside the world: one scatter
        obs[_VIEW_CELL_OFFSET + world._mat_map[xs:xe, ys:ye]] = 1
    else:
        mats = world._mat_map[xs:xe, ys:ye].T  # -> [y, x]; ids 1..12 are MATERIALS
        rows, cols = np.nonzero(mats)
        view[rows + (ys - y0), cols + (xs - x0), mats[rows, cols].astype(np.intp) - 1] = 1
    obj_ids = world._obj_map[xs:xe, ys:ye].T
    for r, c in zip(*np.nonzero(obj_ids)):
        obj = world._objects[obj_ids[r, c]]
        if obj is None or obj is player:
            continue
        if isinstance(obj, objects.Plant):
            channel = _RIPE_PLANT_CHANNEL if obj.ripe else _PLANT_CHANNEL
        else:
            channel = _OBJECT_CHANNEL.get(type(obj))
            if channel is None:
                continue
        view[r + (ys - y0), c + (xs - x0), channel] = 1
    inventory = player.inventory
    obs[INVENTORY_OFFSET:FACING_OFFSET] = np.minimum(np.fromiter(map(inventory.__getitem__, ITEMS), np.int64,
                                                                 len(ITEMS)), 9)
    obs[FACING_OFFSET + FACINGS.index(tuple(int(v) for v in player.facing))] = 1
    obs[SLEEP_OFFSET] = player.sleeping
    obs[DAYLIGHT_OFFSET] = int(round(float(world.daylight) * DAYLIGHT_LEVELS))
    return obs
