"""A scripted, task-agnostic Crafter player that plays like a varied human.

It keeps an *intention* (gather wood, drink, eat, place a table, craft a tool, mine
stone / coal / iron, place stone, fight, sleep, plant, wander, explore …), chosen at
random among those its inventory allows, with survival needs (thirst, hunger,
fatigue) taking over when low. Each intention is a Python generator of actions that
navigates by breadth-first search on the world map. A fraction of actions is random.
It reads the world state (as a human reads the screen) but never a task reward.
"""

from __future__ import annotations

from collections import deque
from typing import Iterator

import numpy as np
from crafter import constants, objects

from ptgm.domains.crafter.env import ACTIONS, CrafterEnv

A = {name: i for i, name in enumerate(ACTIONS)}
MOVES = {(-1, 0): A["move_left"], (1, 0): A["move_right"], (0, -1): A["move_up"], (0, 1): A["move_down"]}
DIRS = tuple(MOVES)
WALKABLE = tuple(constants.walkable)
PLACEABLE = ("grass", "sand", "path")
MAKE_ORDER = ("wood_pickaxe", "wood_sword", "stone_pickaxe", "stone_sword", "iron_pickaxe", "iron_sword")


class CrafterScriptedPlayer:
    """Call with an observation to get the next action (the observation itself is not needed).

    Args:
        env: the :class:`CrafterEnv` being played (its world is read for navigation).
        rng: randomness for intentions and noise.
        epsilon: probability of a uniformly random action at any step.
        intention_timeout: steps after which an unfinished intention is dropped.
    """

    def __init__(self, env: CrafterEnv, rng: np.random.Generator, epsilon: float = 0.05,
                 intention_timeout: int = 80):
        self.env = env
        self.rng = rng
        self.epsilon = epsilon
        self.intention_timeout = intention_timeout
        self._plan: Iterator[int] | None = None
        self._plan_steps = 0
        self.intention = "none"

    def __call__(self, observation: np.ndarray | None = None) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(len(ACTIONS)))
        if self.intention != "defend" and self._zombie_close():
            # Reflex: a zombie next to you is dealt with first, whatever you were doing.
            self.intention, self._plan, self._plan_steps = "defend", self._hunt(objects.Zombie, 30, radius=3), 0
        for _ in range(3):  # an intention may finish without acting; pick another
            if self._plan is None or self._plan_steps >= self.intention_timeout:
                self.intention, self._plan = self._choose_intention()
                self._plan_steps = 0
            action = next(self._plan, None)
            if action is not None:
                self._plan_steps += 1
                return int(action)
            self._plan = None
        return int(self.rng.choice([A["move_left"], A["move_right"], A["move_up"], A["move_down"]]))

    # -- choosing what to do ----------------------------------------------------
    @property
    def inv(self) -> dict[str, int]:
        return self.env.player.inventory

    def _choose_intention(self) -> tuple[str, Iterator[int]]:
        inv, rng = self.inv, self.rng
        if self.env.player.sleeping:
            return "sleep", self._sleep()
        if inv["drink"] <= 3 and rng.random() < 0.8:
            return "drink", self._drink()
        if inv["food"] <= 3 and rng.random() < 0.8:
            return "eat", self._eat()
        if inv["energy"] <= 2 and rng.random() < 0.8:
            return "sleep", self._sleep()
        options: dict[str, float] = {
            "collect_wood": 3.0 if inv["wood"] < 6 else 0.5,
            "drink": 1.0 if inv["drink"] < 9 else 0.2,
            "eat": 1.0 if inv["food"] < 9 else 0.2,
            "collect_sapling": 0.4,
            "wander": 0.6,
            "explore": 1.0,
            "fight": 0.8,
        }
        if inv["sapling"] > 0:
            options["place_plant"] = 0.6
        options["eat_plant"] = 0.4
        if inv["wood"] >= constants.place["table"]["uses"]["wood"]:
            options["place_table"] = 0.8
        if any(self._can_afford(item) for item in MAKE_ORDER):
            options["make_tool"] = 2.5
        if inv["wood_pickaxe"] > 0:
            options["collect_stone"] = 2.5 if inv["stone"] < 6 else 0.6
            options["collect_coal"] = 1.2
        if inv["stone_pickaxe"] > 0:
            options["collect_iron"] = 1.5
        if inv["iron_pickaxe"] > 0:
            options["collect_diamond"] = 1.0
        if inv["stone"] > 0:
            options["place_stone"] = 0.8
        if inv["stone"] >= constants.place["furnace"]["uses"]["stone"]:
            options["place_furnace"] = 0.8
        if inv["energy"] < 7:
            options["sleep"] = 0.3
        names = list(options)
        weights = np.array([options[n] for n in names])
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        return name, self._intention(name)

    def _intention(self, name: str) -> Iterator[int]:
        rng = self.rng
        if name.startswith("collect_") and name != "collect_sapling":
            material = {"collect_wood": "tree"}.get(name, name[len("collect_"):])
            return self._collect(material, times=int(rng.integers(1, 5)))
        return {
            "drink": self._drink,
            "eat": self._eat,
            "collect_sapling": self._collect_sapling,
            "place_plant": lambda: self._place("plant", ("grass",)),
            "eat_plant": self._eat_plant,
            "place_table": lambda: self._place("table", PLACEABLE),
            "place_furnace": self._place_furnace,
            "place_stone": lambda: self._place("stone", ("grass", "sand", "path", "water", "lava")),
            "make_tool": self._make_tool,
            "fight": self._fight,
            "sleep": self._sleep,
            "wander": self._wander,
            "explore": self._explore,
        }[name]()

    def _can_afford(self, item: str) -> bool:
        return all(self.inv[k] >= v for k, v in constants.make[item]["uses"].items())

    # -- intentions (generators of actions) ------------------------------------------
    def _collect(self, material: str, times: int) -> Iterator[int]:
        for _ in range(times):
            if not (yield from self._go_face(lambda: self._material_mask(material))):
                return
            yield A["do"]

    def _drink(self) -> Iterator[int]:
        if not (yield from self._go_face(lambda: self._material_mask("water"))):
            return
        for _ in range(int(self.rng.integers(2, 9))):
            if self.inv["drink"] >= 9:
                return
            yield A["do"]

    def _eat(self) -> Iterator[int]:
        yield from self._hunt(objects.Cow, max_steps=60)

    def _fight(self) -> Iterator[int]:
        kind = objects.Zombie if self.rng.random() < 0.75 else objects.Skeleton
        yield from self._hunt(kind, max_steps=40)

    def _hunt(self, kind: type, max_steps: int, radius: int = 20) -> Iterator[int]:
        """Chase the nearest creature of ``kind`` (re-planning as it moves) and hit it until it dies."""
        steps = 0
        while steps < max_steps:
            mask = self._object_mask(kind, radius=radius)
            if not mask.any():
                return
            path = self._path_next_to(mask, max_len=20)
            if path is None:
                return
            cells, target = path
            for cell in cells[:3]:  # creatures move: re-plan every few steps
                yield self._move_toward(cell)
                steps += 1
            if not cells:
                yield self._move_toward(target)  # face it (it blocks, so we don't move)
                for _ in range(6):
                    if self.env.world[target][1] is None:
                        break
                    yield A["do"]
                    steps += 1
                steps += 1

    def _eat_plant(self) -> Iterator[int]:
        def ripe_plants():
            return self._object_mask(objects.Plant, lambda o: o.ripe)
        if (yield from self._go_face(ripe_plants)):
            yield A["do"]

    def _collect_sapling(self) -> Iterator[int]:
        for _ in range(int(self.rng.integers(5, 20))):
            if self._faced()[0] == "grass" and self._faced()[1] is None:
                yield A["do"]
            else:
                yield MOVES[DIRS[int(self.rng.integers(4))]]

    def _place(self, what: str, where: tuple[str, ...]) -> Iterator[int]:
        for _ in range(8):
            material, obj = self._faced()
            if material in where and obj is None:
                yield A[f"place_{what}"]
                return
            yield MOVES[DIRS[int(self.rng.integers(4))]]

    def _place_furnace(self) -> Iterator[int]:
        if (yield from self._go_near_table()):
            yield from self._place("furnace", PLACEABLE)

    def _make_tool(self) -> Iterator[int]:
        affordable = [item for item in MAKE_ORDER if self._can_afford(item)]
        if not affordable:
            return
        # Prefer the first tool of a tier not yet owned, like a player progressing.
        missing = [item for item in affordable if self.inv[item] == 0]
        item = (missing or affordable)[0] if self.rng.random() < 0.8 else affordable[int(self.rng.integers(len(affordable)))]
        if not (yield from self._go_near_table()):
            return
        if "furnace" in constants.make[item]["nearby"] and not self._nearby_has("furnace"):
            if self.inv["stone"] >= constants.place["furnace"]["uses"]["stone"]:
                yield from self._place("furnace", PLACEABLE)
            else:
                return
        yield A[f"make_{item}"]

    def _go_near_table(self) -> Iterator[int]:
        """Walk next to a table, placing one when none is within reach and wood allows."""
        if self._nearby_has("table"):
            return True
        if (yield from self._go_face(lambda: self._material_mask("table"), max_len=25)):
            return True
        if self.inv["wood"] >= constants.place["table"]["uses"]["wood"]:
            yield from self._place("table", PLACEABLE)
            return self._nearby_has("table")
        return False

    def _sleep(self) -> Iterator[int]:
        yield A["sleep"]
        for _ in range(400):
            if not self.env.player.sleeping:
                return
            yield A["noop"]

    def _wander(self) -> Iterator[int]:
        direction = DIRS[int(self.rng.integers(4))]
        for _ in range(int(self.rng.integers(3, 15))):
            if self.rng.random() < 0.3:
                direction = DIRS[int(self.rng.integers(4))]
            yield MOVES[direction]

    def _explore(self) -> Iterator[int]:
        world = self.env.world
        pos = self.env.player.pos
        for _ in range(10):
            offset = self.rng.integers(-20, 21, size=2)
            target = np.clip(pos + offset, 0, np.array(world.area) - 1)
            if world[target][0] in WALKABLE:
                break
        else:
            return
        mask = np.zeros(world.area, bool)
        mask[tuple(target)] = True
        path = self._path_next_to(mask, max_len=40, include_target=True)
        if path is None:
            return
        for cell in path[0]:
            yield self._move_toward(cell)

    # -- navigation ---------------------------------------------------------------------
    def _go_face(self, target_mask_fn, max_len: int = 40) -> Iterator[int]:
        """Walk next to the nearest target cell and face it; returns whether it got there."""
        for _attempt in range(3):
            mask = target_mask_fn()
            if not mask.any():
                return False
            path = self._path_next_to(mask, max_len=max_len)
            if path is None:
                return False
            cells, target = path
            blocked = False
            for cell in cells:
                before = tuple(self.env.player.pos)
                yield self._move_toward(cell)
                if tuple(self.env.player.pos) == before:
                    blocked = True  # a creature stepped in the way: re-plan
                    break
            if blocked:
                continue
            if not mask[tuple(target)]:
                continue
            yield self._move_toward(target)  # turn to face it (targets are not walkable)
            return tuple(np.asarray(self.env.player.pos) + self.env.player.facing) == tuple(target)
        return False

    def _move_toward(self, cell) -> int:
        dx, dy = int(cell[0]) - int(self.env.player.pos[0]), int(cell[1]) - int(self.env.player.pos[1])
        if abs(dx) >= abs(dy):
            return MOVES[(int(np.sign(dx)) or 1, 0)] if dx else MOVES[(0, int(np.sign(dy)) or 1)]
        return MOVES[(0, int(np.sign(dy)))]

    def _path_next_to(self, target: np.ndarray, max_len: int, include_target: bool = False):
        """Breadth-first search over walkable free cells to a cell beside (or on) a target.

        Returns ``(cells to walk, target cell)`` or ``None`` when nothing is within ``max_len``.
        """
        world = self.env.world
        start = (int(self.env.player.pos[0]), int(self.env.player.pos[1]))
        walkable = np.isin(world._mat_map, [world._mat_ids[m] for m in WALKABLE]) & (world._obj_map == 0)
        width, height = world.area
        parents = {start: None}
        queue = deque([(start, 0)])
        while queue:
            cell, depth = queue.popleft()
            if include_target and target[cell]:
                return self._unwind(parents, cell), cell
            for dx, dy in DIRS:
                nxt = (cell[0] + dx, cell[1] + dy)
                if not (0 <= nxt[0] < width and 0 <= nxt[1] < height):
                    continue
                if not include_target and target[nxt]:
                    return self._unwind(parents, cell), nxt
                if nxt in parents or not walkable[nxt] or depth >= max_len:
                    continue
                parents[nxt] = cell
                queue.append((nxt, depth + 1))
        return None

    @staticmethod
    def _unwind(parents: dict, cell) -> list:
        path = []
        while parents[cell] is not None:
            path.append(cell)
            cell = parents[cell]
        return path[::-1]

    def _material_mask(self, material: str) -> np.ndarray:
        world = self.env.world
        if material not in world._mat_ids:
            return np.zeros(world.area, bool)
        return world._mat_map == world._mat_ids[material]

    def _object_mask(self, kind: type, predicate=None, radius: int = 20) -> np.ndarray:
        world = self.env.world
        mask = np.zeros(world.area, bool)
        pos = self.env.player.pos
        for obj in world.objects:
            if isinstance(obj, kind) and np.abs(obj.pos - pos).sum() <= radius and (predicate is None or predicate(obj)):
                mask[tuple(obj.pos)] = True
        return mask

    def _zombie_close(self) -> bool:
        _, objs = self.env.world.nearby(self.env.player.pos, 2)
        return any(isinstance(obj, objects.Zombie) for obj in objs)

    def _faced(self):
        player = self.env.player
        return self.env.world[np.asarray(player.pos) + player.facing]

    def _nearby_has(self, material: str) -> bool:
        nearby, _ = self.env.world.nearby(self.env.player.pos, 1)
        return material in nearby
