"""A scripted, task-agnostic Crafter player that survives and climbs the tech tree.

Each step the player continues its current *intention* (a Python generator of actions, named
like the achievement it works toward: ``collect_wood``, ``make_stone_pickaxe``, ``drink``,
``explore`` ...) unless something more pressing comes up:

1. a zombie or skeleton close by is fought (``defend``);
2. thirst or hunger that has become urgent is dealt with (``drink``, ``eat``);
3. at dusk (even on a chosen errand), or when exhausted or hurt, it walls itself into a two-cell
   pocket (digging into rock, placing stones, or tables when out of stone), sleeps until rested
   and waits there for daylight, and after dawn for the zombies gathered round it to go
   (``sleep``); a pocket by water lets it drink through the night, one in rock lets it tunnel on;
4. otherwise a new intention is drawn at random, weighted by what the inventory allows and
   what the next step of the tech tree needs, times a per-episode *taste* so episodes differ.

It navigates by breadth-first search on numpy masks of the world map, digging through trees
and the rock its pickaxe can break, and never steps on or next to lava. It remembers the cells
it has seen: it only seeks materials it has seen (iron and diamonds from further off, once its
tools can mine them), and otherwise explores toward unseen cells
(toward mountains when it looks for stone, coal, iron or diamonds). A few actions are random.
It reads the world state (as a human reads the screen) but never a task reward.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from crafter import constants, objects

from ptgm.domains.crafter.env import ACTIONS, CrafterEnv

A = {name: i for i, name in enumerate(ACTIONS)}
DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))
MOVES = {d: A[f"move_{name}"] for d, name in zip(DIRS, ("left", "right", "up", "down"))}
WALKABLE = tuple(constants.walkable)  # grass, sand, path: where the player, zombies and cows walk
SOLID = ("water", "stone", "tree", "coal", "iron", "diamond", "table", "furnace")  # nothing walks in
MINABLE = ("tree", "stone", "coal", "iron", "diamond")  # dug through on the way (``do`` clears them)
MINERALS = ("stone", "coal", "iron", "diamond")  # found in mountains
TOOLS = ("wood_pickaxe", "wood_sword", "stone_pickaxe", "stone_sword", "iron_pickaxe", "iron_sword")
VIEW = (4, 3)  # the local view reaches 4 cells left/right and 3 up/down
DIG_COST = 2  # steps to dig a cell (turn to it, hit it) on top of walking in
DUSK = 0.8  # daylight below which, falling, the player shelters (zombies spawn below ~0.83)
MORNING = 0.7  # daylight below which, rising, it is still night for a player outside
DAWN = 0.85  # daylight above which it leaves the shelter (once no zombie waits outside)
MORNING_WAIT = 60  # the most steps after dawn it waits walled in for zombies around to go
EVENING = 0.93  # daylight below which, falling, it tops up food and drink for the night
POCKET_CELLS = 6  # the most ground cells a shelter may have (a tunnel dug from it included)
FAR_REACH = {"iron": 80, "diamond": 150}  # search cost within which seen iron and diamonds are sought
LOW_NEED = 2  # food or drink at or below which the player stops what it does to eat or drink
NIGHT_WORK = 4  # energy, health, food and drink above which the player works walled in at night
RANK = {"defend": 3, "drink": 2, "eat": 2, "sleep": 1}  # an urgent intention interrupts lower ranks
OPTIONS = ("collect_wood", "collect_sapling", "place_plant", "eat_plant", "drink", "eat", "place_table",
           *(f"make_{tool}" for tool in TOOLS), "collect_stone", "collect_coal", "collect_iron",
           "collect_diamond", "place_furnace", "place_stone", "defeat_zombie", "defeat_skeleton",
           "explore", "wander")


def _grow(mask: np.ndarray) -> np.ndarray:
    """Cells 4-adjacent to a cell of ``mask``."""
    out = np.zeros_like(mask)
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _grow8(mask: np.ndarray) -> np.ndarray:
    """Cells within one step, diagonals included (what Crafter calls *nearby* for crafting)."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[x, y] = mask[x + dx, y + dy]``, False beyond the border."""
    out = np.zeros_like(mask)
    w, h = mask.shape
    out[max(0, -dx):w - max(0, dx), max(0, -dy):h - max(0, dy)] = mask[max(0, dx):w + min(0, dx),
                                                                          max(0, dy):h + min(0, dy)]
    return out


def _at(mask: np.ndarray, cell) -> bool:
    """``mask[cell]``, False beyond the border."""
    return 0 <= cell[0] < mask.shape[0] and 0 <= cell[1] < mask.shape[1] and bool(mask[cell])


def _box_sum(mask: np.ndarray, r: int) -> np.ndarray:
    """Number of ``mask`` cells in the (2r+1)² square around each cell."""
    c = np.pad(mask.astype(np.int32), ((r + 1, r), (r + 1, r))).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


class CrafterScriptedPlayer:
    """Call with an observation to get the next action (the observation itself is not needed).

    Args:
        env: the :class:`CrafterEnv` being played (its world is read for navigation).
        rng: randomness for intentions, tastes and noise.
        epsilon: probability of a random action during ordinary intentions.
        intention_timeout: steps after which an unfinished intention is dropped.
    """

    def __init__(self, env: CrafterEnv, rng: np.random.Generator, epsilon: float = 0.03,
                 intention_timeout: int = 300):
        self.env = env
        self.rng = rng
        self.epsilon = epsilon
        self.intention_timeout = intention_timeout
        self.intention = "none"
        self._plan: Iterator[int] | None = None
        self._plan_steps = 0
        self._rank = 0  # RANK of the current intention if it was started as urgent, else 0
        self._suspended: tuple | None = None  # the intention an urgent one interrupted, resumed after it
        self._bad_pockets: set = set()  # pockets that could not be built (not tried again)
        self._interrupted = False  # whether the suspended intention was interrupted since it started
        self._walls: list = []  # the walls of the pocket being built (never dug through meanwhile)
        self._t = 0
        self._daylight, self._evening, self._night = float(env.world.daylight), False, False
        self._rest_after = 0  # no new shelter attempt before this step (after a failed one)
        self._tunnel_after = 0  # no night work before this step (after finding none)
        world = env.world
        self._ids = world._mat_ids
        self._walkable_lut = self._lut(WALKABLE)
        self._solid_lut = self._lut(SOLID)
        self.seen = np.zeros(world.area, bool)  # cells that have been in view
        self._cow_seen: tuple[int, int] | None = None  # where a cow was last seen
        self._maps_t = -1
        # Per-episode preferences make episodes differ in what the player spends its time on.
        self._taste = {name: float(rng.lognormal(0.0, 0.5)) for name in OPTIONS}

    def __call__(self, observation: np.ndarray | None = None) -> int:
        self._t += 1
        daylight = self.env.world.daylight
        self._evening = daylight < min(EVENING, self._daylight)
        self._night = daylight < (DUSK if daylight < self._daylight else MORNING)
        self._daylight = daylight
        x, y = self._pos()
        self.seen[max(0, x - VIEW[0]):x + VIEW[0] + 1, max(0, y - VIEW[1]):y + VIEW[1] + 1] = True
        cows = self._creatures(objects.Cow, VIEW[1])
        if cows:
            self._cow_seen = tuple(int(v) for v in cows[0].pos)
        urgent = self._urgent()
        # Only an intention started as urgent outranks another: a chosen ``eat`` yields to the night.
        if urgent is not None and RANK[urgent] > self._rank:
            if self._rank and self._plan is not None:
                self._suspended = (self.intention, self._plan, self._plan_steps, self._rank)
                self._interrupted = True
            self._start(urgent, RANK[urgent])
        if (self.intention not in RANK and self.rng.random() < self.epsilon
                and not self.env.player.sleeping):
            return self._safe(int(self.rng.choice(self._random_actions)))
        for _ in range(3):  # an intention may finish without acting; pick another
            if self._plan is None or self._plan_steps >= self.intention_timeout:
                if self._suspended is not None:
                    (self.intention, self._plan, self._plan_steps, self._rank), self._suspended = self._suspended, None
                else:
                    self._start(self._choose())
            action = next(self._plan, None)
            if action is not None:
                self._plan_steps += 1
                return self._safe(int(action))
            self._plan, self._rank = None, 0
        return self._safe(MOVES[DIRS[int(self.rng.integers(4))]])

    # -- what to do -----------------------------------------------------------------------------
    @property
    def inv(self) -> dict[str, int]:
        return self.env.player.inventory

    _random_actions = tuple(i for name, i in A.items() if name != "sleep")  # sleeping is never random

    def _start(self, name: str, rank: int = 0) -> None:
        self.intention, self._plan, self._plan_steps, self._rank = name, self._intention(name), 0, rank

    def _urgent(self) -> str | None:
        """An intention that must start now, whatever the player is doing."""
        inv = self.inv
        if self._threats(4) and not self._enclosed():
            return "defend"
        # In the shelter at night, thirst and hunger must be dire to go out among the zombies.
        low = LOW_NEED
        if self._sheltered():  # after dawn starts, or when health runs low, it is time to go
            low = 0 if inv["health"] <= 4 or self._daylight > 0.7 else -1
        if inv["drink"] <= low:
            return "drink"
        if inv["food"] <= low:
            return "eat"
        tired = inv["energy"] <= 2 or inv["health"] <= 3 or self._night
        if self._t >= self._rest_after and tired:
            return "sleep"
        return None

    def _choose(self) -> str:
        options = self._options()
        names = list(options)
        weights = np.array([options[n] * self._taste[n] for n in names])
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]

    def _options(self) -> dict[str, float]:
        """Weights of the intentions the inventory allows; the tech tree's next steps weigh most."""
        inv = self.inv
        table_near = self._known_near("table", 12)
        missing = [tool for tool in TOOLS if inv[tool] == 0]
        table_wood = constants.place["table"]["uses"]["wood"]
        furnace_stone = constants.place["furnace"]["uses"]["stone"]
        wood_need = sum(constants.make[tool]["uses"].get("wood", 0) for tool in missing[:3])
        wood_need += 0 if table_near else table_wood
        stone_need = 5 + sum(tool.startswith("stone") for tool in missing)  # 5 to wall in at night
        if inv["stone_pickaxe"] and not inv["iron_pickaxe"]:
            stone_need += furnace_stone
        iron_tools = sum(tool.startswith("iron") for tool in missing)
        options = {
            "collect_wood": 5.0 if inv["wood"] < min(9, wood_need) else 0.4,
            "collect_sapling": 0.4 if inv["sapling"] == 0 else 0.1,
            "drink": 4.0 if inv["drink"] <= 5 else 0.1,
            "eat": 3.0 if inv["food"] <= 6 else 0.1,
            "explore": 1.0,
            "wander": 0.3,
        }
        if self._evening:  # the night is long: go to bed fed and watered
            options["drink"] = 20.0 if inv["drink"] < 9 else 0.1
            options["eat"] = 20.0 if inv["food"] < 8 else 0.1
        if inv["sapling"]:
            options["place_plant"] = 0.8
        if self._ripe_plants().any():
            options["eat_plant"] = 4.0
        if inv["wood"] >= table_wood:
            options["place_table"] = 0.2 if table_near else 0.5
        for tool in missing:
            if self._can_make(tool, table_near):
                # A pickaxe opens the next tier: make it before the sword of its tier.
                sword_first = tool.endswith("sword") and tool.replace("sword", "pickaxe") in missing
                options[f"make_{tool}"] = 0.5 if sword_first else 8.0
        if inv["wood_pickaxe"]:
            options["collect_stone"] = 4.0 if inv["stone"] < min(9, stone_need) else 0.4
            options["collect_coal"] = 3.0 if inv["coal"] < iron_tools else 0.3
            if inv["stone"] > 3:
                options["place_stone"] = 0.3
        if inv["stone_pickaxe"]:
            options["collect_iron"] = 4.0 if inv["iron"] < iron_tools else 0.3
        if inv["iron_pickaxe"]:
            options["collect_diamond"] = 5.0
        if inv["stone"] >= furnace_stone:
            wants = iron_tools and inv["iron"] and inv["coal"] and not self._known_near("furnace", 12)
            options["place_furnace"] = 3.0 if wants else 0.2
        if inv["health"] >= 6 and self._creatures(objects.Zombie, 8):
            options["defeat_zombie"] = 1.0
        if inv["health"] >= 6 and self._creatures(objects.Skeleton, 8):
            options["defeat_skeleton"] = 1.0
        return options

    def _can_make(self, tool: str, table_near: bool) -> bool:
        """Whether the inventory pays for the tool, and for the table (and furnace) it needs if none is near."""
        cost = dict(constants.make[tool]["uses"])
        if not table_near:
            cost["wood"] = cost.get("wood", 0) + constants.place["table"]["uses"]["wood"]
        if "furnace" in constants.make[tool]["nearby"] and not self._known_near("furnace", 12):
            cost["stone"] = cost.get("stone", 0) + constants.place["furnace"]["uses"]["stone"]
        return all(self.inv[k] >= v for k, v in cost.items())

    def _intention(self, name: str) -> Iterator[int]:
        if name.startswith("make_"):
            return self._make(name[len("make_"):])
        if name in ("collect_wood", *(f"collect_{m}" for m in MINERALS)):
            material = "tree" if name == "collect_wood" else name[len("collect_"):]
            return self._collect(material, times=int(self.rng.integers(1, 5)))
        return {
            "defend": lambda: self._hunt((objects.Zombie, objects.Skeleton), max_steps=30, radius=5),
            "drink": self._drink,
            "eat": self._eat,
            "sleep": self._rest,
            "collect_sapling": self._collect_sapling,
            "place_plant": self._place_plant,
            "eat_plant": self._eat_plant,
            "place_table": lambda: self._place("table"),
            "place_furnace": self._place_furnace,
            "place_stone": lambda: self._place("stone"),
            "defeat_zombie": lambda: self._hunt(objects.Zombie, max_steps=40, radius=8),
            "defeat_skeleton": lambda: self._hunt(objects.Skeleton, max_steps=40, radius=8),
            "explore": lambda: self._explore(None),
            "wander": self._wander,
        }[name]()

    # -- intentions (generators of actions; their return value says whether they succeeded) -------
    def _collect(self, material: str, times: int) -> Iterator[int]:
        for _ in range(times):
            # Rare minerals seen far off are worth the walk (and the digging) back to them.
            reach = FAR_REACH.get(material, 40)
            cell = yield from self._go_face(lambda: self.seen & self._is(material), max_cost=reach)
            if cell is None:
                if not (yield from self._explore(material)):
                    return
                continue
            for _ in range(3):
                if not self._is(material)[cell]:
                    break
                yield A["do"]

    def _drink(self, max_cost: int = 40, enough: int | None = None) -> Iterator[int]:
        """Drink from the nearest water seen (exploring for some if none is, and far is allowed)."""
        if (yield from self._go_face(lambda: self.seen & self._is("water"), max_cost)) is None:
            if max_cost >= 40:
                yield from self._explore("water")
            return False
        enough = enough or int(self.rng.integers(7, 10))
        for _ in range(12):
            if self.inv["drink"] >= enough:
                break
            yield A["do"]
        return True

    def _eat(self) -> Iterator[int]:
        if self._ripe_plants().any():
            yield from self._eat_plant()
        elif not (yield from self._hunt(objects.Cow, max_steps=60, radius=8)):
            if self._cow_seen is not None and self._cow_seen != self._pos():
                # Go back to where a cow was last seen (it won't have gone far).
                target = np.zeros(self.seen.shape, bool)
                target[self._cow_seen] = True
                cost, goal = self._search(_grow(target) | target, max_cost=40)
                self._cow_seen = None
                if goal is not None:
                    yield from self._follow(self._path_to(cost, goal))
                    return
            yield from self._explore("grass")

    def _eat_plant(self) -> Iterator[int]:
        if (yield from self._go_face(self._ripe_plants)) is not None:
            yield A["do"]

    def _hunt(self, kind, max_steps: int, radius: int) -> Iterator[int]:
        """Chase the nearest creature of ``kind`` and hit it until it dies; returns whether it did."""
        for _ in range(max_steps):
            found = self._creatures(kind, radius)
            if not found:
                return False
            pos = self._pos()
            creature = min(found, key=lambda obj: abs(obj.pos[0] - pos[0]) + abs(obj.pos[1] - pos[1]))
            d = (int(creature.pos[0]) - pos[0], int(creature.pos[1]) - pos[1])
            if d in MOVES:
                # Turning toward a creature does not move the player (it blocks the cell).
                yield A["do"] if tuple(self.env.player.facing) == d else MOVES[d]
                if creature.health <= 0:
                    return True
                continue
            target = np.zeros(self.seen.shape, bool)
            target[tuple(creature.pos)] = True
            cost, goal = self._search(_grow(target), max_cost=2 * radius, dig=False)
            if goal is None:
                return False
            action = self._step_into(self._path_to(cost, goal)[0])
            if action is None:
                return False
            yield action
        return False

    def _collect_sapling(self) -> Iterator[int]:
        grass = self._is("grass") & self._maps()[2]
        if not (yield from self._go_face_free(grass, max_cost=10)):
            return
        for _ in range(int(self.rng.integers(5, 20))):
            if self.inv["sapling"] and self.rng.random() < 0.5:
                return
            yield A["do"]  # grass gives a sapling one time in ten

    def _place_plant(self) -> Iterator[int]:
        """Plant a sapling, preferably in a nook, then seal its open side with stone (creatures trample it)."""
        grass = self._is("grass") & self._maps()[2]
        solid = self._solid_lut[self.env.world._mat_map]
        nook = grass & (sum(_shift(solid, *d).astype(np.int32) for d in DIRS) == 3)
        if not ((yield from self._go_face_free(nook, max_cost=12))
                or (yield from self._go_face_free(grass, max_cost=12))):
            return
        plant = self._faced()
        yield A["place_plant"]
        if self.inv["stone"] >= 2 and nook[plant] and isinstance(self.env.world[plant][1], objects.Plant):
            yield from self._place_block_at(self._pos())

    def _place(self, what: str) -> Iterator[int]:
        where = constants.place[what]["where"]
        target = np.isin(self.env.world._mat_map, [self._ids[m] for m in where]) & self._maps()[2]
        if (yield from self._go_face_free(target, max_cost=10)):
            yield A[f"place_{what}"]

    def _place_furnace(self) -> Iterator[int]:
        if (yield from self._go_to_station(need_furnace=False)):
            yield from self._place_beside_table("furnace")

    def _make(self, tool: str) -> Iterator[int]:
        if (yield from self._go_to_station("furnace" in constants.make[tool]["nearby"])):
            yield A[f"make_{tool}"]

    def _go_to_station(self, need_furnace: bool) -> Iterator[int]:
        """Stand where a table (and a furnace) are nearby, building them when none is within reach."""
        for _ in range(4):
            walk = self._maps()[0]
            stand = walk & self._near("table")
            if need_furnace:
                stand &= self._near("furnace")
            if stand[self._pos()]:
                return True
            cost, goal = self._search(stand, max_cost=25, dig=False)
            if goal is not None:
                yield from self._follow(self._path_to(cost, goal))
                continue
            if need_furnace and self._search(walk & self._near("table"), max_cost=25, dig=False)[1] is not None:
                if self.inv["stone"] < constants.place["furnace"]["uses"]["stone"]:
                    return False
                if not (yield from self._place_beside_table("furnace")):
                    return False
                continue
            if self.inv["wood"] < constants.place["table"]["uses"]["wood"]:
                return False
            yield from self._place("table")
        return False

    def _place_beside_table(self, what: str) -> Iterator[int]:
        """Place ``what`` facing a free cell while standing where a table is nearby."""
        free_ground = np.isin(self.env.world._mat_map, [self._ids[m] for m in ("grass", "sand", "path")])
        ok = yield from self._go_face_free(free_ground & self._maps()[2], stand_ok=self._near("table"),
                                           max_cost=25)
        if ok:
            yield A[f"place_{what}"]
        return ok

    def _rest(self) -> Iterator[int]:
        """Top up, wall in, sleep until rested and wait for daylight."""
        inv = self.inv
        if inv["drink"] < 8:
            yield from self._drink(max_cost=20)
        if inv["food"] < 6:
            yield from self._hunt(objects.Cow, max_steps=40, radius=8)
        if not self._enclosed():
            for _ in range(3):
                pocket = self._find_pocket()
                self._interrupted = False
                if pocket is None or (yield from self._build_pocket(*pocket)):
                    break
                if not self._interrupted:  # (a fight on the way is no fault of the pocket)
                    self._bad_pockets.add(pocket[:2])
            if not self._enclosed():
                self._rest_after = self._t + 40
                if inv["energy"] > 1:
                    return  # carry on awake; try again later
        waited = 0  # steps waited after dawn for the zombies around the shelter to go
        while self._urgent() in (None, "sleep"):
            player = self.env.player
            drinkable = not player.sleeping and inv["drink"] < 9 and self._enclosed() and self._near_water()
            if drinkable and (yield from self._drink(max_cost=2, enough=9)):
                continue
            if player.sleeping:
                yield A["noop"]
            elif self._may_work_walled_in() and (yield from self._tunnel()):
                continue
            elif inv["energy"] < constants.items["energy"]["max"]:
                yield A["sleep"]
            elif self._enclosed() and (self.env.world.daylight < DAWN or inv["health"] < 6):
                yield A["noop"]
            elif self._enclosed() and waited < MORNING_WAIT and self._creatures(objects.Zombie, 6):
                # Zombies gather round the shelter at night and linger after dawn (no more spawn then,
                # and they despawn one at a time): stepping out among them costs 2 health each.
                waited += 1
                yield A["noop"]
            else:
                return

    def _explore(self, purpose: str | None) -> Iterator[int]:
        """Walk toward cells not seen yet, toward mountains when looking for minerals; returns whether it moved."""
        dig = purpose in MINERALS and self.inv["wood_pickaxe"] > 0
        cost, _ = self._search(None, max_cost=40, dig=dig)
        reached = cost > 0
        frontier = reached & _grow(_grow(~self.seen))
        if not frontier.any():
            frontier = reached
            if not frontier.any():
                return False
        cells = np.argwhere(frontier)
        score = -cost[frontier] / 8.0
        if purpose in MINERALS:
            rock = self.seen & np.isin(self.env.world._mat_map, [self._ids[m] for m in ("stone", "path", *MINERALS)])
            score = score + 3.0 * _box_sum(rock, 3)[frontier] / 49.0
        elif purpose == "grass":
            score = score + 2.0 * _box_sum(self.seen & self._is("grass"), 3)[frontier] / 49.0
        p = np.exp(score - score.max())
        cell = tuple(int(v) for v in cells[int(self.rng.choice(len(cells), p=p / p.sum()))])
        return (yield from self._follow(self._path_to(cost, cell)[:int(self.rng.integers(10, 30))]))

    def _wander(self) -> Iterator[int]:
        direction = DIRS[int(self.rng.integers(4))]
        for _ in range(int(self.rng.integers(3, 15))):
            if self.rng.random() < 0.3:
                direction = DIRS[int(self.rng.integers(4))]
            yield MOVES[direction]

    # -- the night shelter ----------------------------------------------------------------------
    def _find_pocket(self):
        """The cheapest two-cell pocket to wall in: cells A (entered from E = A - d) and B = A + d.

        A and B are free ground or stone to dig; the five cells around them other than E must be
        solid already or get a block (B + d from inside, the four sides from outside beforehand);
        E gets the last block from inside, where the player stands facing it after stepping back
        from B to A. Blocks are stones, or tables when stones run out; one wall must be one the
        player can dig out through in the morning. Returns ``(A, d, sides to fill)`` or ``None``.
        """
        walk, dig, free, danger = self._maps()
        mat = self.env.world._mat_map
        solid = self._solid_lut[mat]
        ground = self._walkable_lut[mat] & free & ~danger
        rock = dig & self._is("stone")
        exit_wall = dig & solid  # trees, and rock once the player has a pickaxe
        water = self._is("water")  # a wall of water lets the player drink through the night
        cost, _ = self._search(None, max_cost=25, dig=False)
        stones, tables = self.inv["stone"], self.inv["wood"] // constants.place["table"]["uses"]["wood"]
        # Deep in rock the player can tunnel on through the night (see _tunnel).
        in_rock = _box_sum(dig & ~self._is("tree"), 2) if self.inv["wood_pickaxe"] else 0
        best, best_score = None, np.inf
        for d in DIRS:
            p = (d[1], d[0])
            sides = [p, (-p[0], -p[1]), (d[0] + p[0], d[1] + p[1]), (d[0] - p[0], d[1] - p[1])]
            back = (2 * d[0], 2 * d[1])
            room = walk | rock
            valid = room & _shift(room, *d) & _shift(cost >= 0, -d[0], -d[1]) & _shift(walk, -d[0], -d[1])
            n_sides = np.zeros(mat.shape, np.int32)
            can_exit = np.zeros(mat.shape, bool)
            by_water = np.zeros(mat.shape, bool)
            for o in sides + [back]:
                valid &= _shift(solid | ground, *o)
                can_exit |= _shift(exit_wall, *o)
                by_water |= _shift(water, *o)
            for o in sides:
                n_sides += _shift(ground, *o)
            gain = rock.astype(np.int32) + _shift(rock, *d)
            need = 1 + n_sides + _shift(ground, *back)
            valid &= (n_sides <= stones + tables) & (need <= np.minimum(9, stones + gain) + tables)
            valid &= can_exit | ((stones + gain > 0) & (self.inv["wood_pickaxe"] > 0))
            if not valid.any():
                continue
            score = (2 * _shift(cost, -d[0], -d[1]) + 5 * n_sides + DIG_COST * gain - 10 * by_water
                     - 1.5 * in_rock + self.rng.random(mat.shape))
            for a, bad_d in self._bad_pockets:
                if bad_d == d:
                    valid[a] = False
            score = np.where(valid, score, np.inf)
            i = np.unravel_index(int(np.argmin(score)), score.shape)
            if score[i] < best_score:
                a = (int(i[0]), int(i[1]))
                fill = [(a[0] + o[0], a[1] + o[1]) for o in sides if ground[a[0] + o[0], a[1] + o[1]]]
                best, best_score = (a, d, fill), score[i]
        return best

    def _build_pocket(self, a, d, fill) -> Iterator[int]:
        p = (d[1], d[0])
        self._walls = [(a[0] + o[0], a[1] + o[1]) for o in (
            p, (-p[0], -p[1]), (d[0] + p[0], d[1] + p[1]), (d[0] - p[0], d[1] - p[1]), (2 * d[0], 2 * d[1]))]
        self._maps_t = -1
        try:
            return (yield from self._wall_in(a, d, fill))
        finally:
            self._walls, self._maps_t = [], -1

    def _wall_in(self, a, d, fill) -> Iterator[int]:
        for cell in fill:
            if self._walkable_lut[self.env.world._mat_map[cell]] and not (yield from self._place_block_at(cell)):
                return False
        entrance, b = (a[0] - d[0], a[1] - d[1]), (a[0] + d[0], a[1] + d[1])
        if self._pos() != entrance:
            target = np.zeros(self.seen.shape, bool)
            target[entrance] = True
            cost, goal = self._search(target, max_cost=40, dig=False)
            if goal is None or not (yield from self._follow(self._path_to(cost, goal))):
                return False
        if not (yield from self._follow([a, b])):
            return False
        back_material, back_obj = self.env.world[(b[0] + d[0], b[1] + d[1])]
        if back_material in WALKABLE and back_obj is None:
            yield self._block()
        yield MOVES[(-d[0], -d[1])]  # step back into A, now facing the entrance
        for _ in range(8):
            material, obj = self.env.world[entrance]
            if self._pos() != a or material not in WALKABLE:
                break
            yield A["do"] if obj is not None else self._block()  # a creature followed: hit it first
        return self._enclosed()

    def _block(self) -> int:
        """The action placing a wall block ahead: a stone, or a table when out of stone."""
        return A["place_stone"] if self.inv["stone"] else A["place_table"]

    def _near_water(self) -> bool:
        """Whether water is next to the player or to the cell in front (the pocket's other cell)."""
        (x, y), (fx, fy) = self._pos(), self._faced()
        window = self.env.world._mat_map[min(x, fx) - 1:max(x, fx) + 2, min(y, fy) - 1:max(y, fy) + 2]
        return bool((window == self._ids["water"]).any())

    def _sheltered(self) -> bool:
        return self.env.world.daylight < DAWN and self._enclosed()

    def _enclosed(self) -> bool:
        """Whether the player is walled in (nothing can walk up to it) with no zombie or skeleton."""
        region = self._region(POCKET_CELLS)
        if region is None:
            return False
        world = self.env.world
        return not any(isinstance(world[cell][1], (objects.Zombie, objects.Skeleton)) for cell in region)

    # -- night work in the shelter: crafting and tunnelling through rock, never opening the pocket ----
    def _may_work_walled_in(self) -> bool:
        inv = self.inv
        return (self._t >= self._tunnel_after and inv["wood_pickaxe"] > 0 and self._enclosed()
                and min(inv["energy"], inv["health"], inv["food"], inv["drink"]) >= NIGHT_WORK)

    def _tunnel_masks(self):
        """``(inside, outside, safe)``: the pocket's free ground, the ground beyond it, and the cells
        the player may dig from the pocket without opening it (minable with its tools, not a tree,
        away from lava, with no outside ground next to them). ``None`` when not walled in or the
        pocket may not grow."""
        region = self._region(POCKET_CELLS)
        if region is None or len(region) >= POCKET_CELLS:
            return None
        walk, dig, free, danger = self._maps()
        mat = self.env.world._mat_map
        inside = np.zeros(mat.shape, bool)
        inside[tuple(np.array(list(region)).T)] = True
        outside = (self._walkable_lut[mat] | (mat == self._ids["lava"])) & ~inside
        safe = dig & ~_grow(outside) & ~danger & ~self._is("tree")
        return inside & walk, outside, safe

    def _tunnel(self) -> Iterator[int]:
        """Walled in at night: craft what the inventory pays for, else tunnel to water (when thirsty)
        or to a mineral seen, else dig on through the rock toward unseen cells. Returns whether it
        did something."""
        masks = self._tunnel_masks()
        if masks is None:
            self._tunnel_after = self._t + 20
            return False
        inside, outside, safe = masks
        for tool in TOOLS:
            if self.inv[tool] == 0 and self._can_make_here(tool):
                return (yield from self._craft_here(tool, safe))
        mat = self.env.world._mat_map
        if self.inv["drink"] < 7:
            wanted = ["water"]
        else:
            wanted = [m for m in MINERALS[1:]
                      if all(self.inv[k] >= v for k, v in constants.collect[m]["require"].items())]
        target = self.seen & np.isin(mat, [self._ids[m] for m in wanted])
        if not self.inv["stone"]:  # a mineral by outside ground can only be mined if re-walled at once
            target &= ~_grow(outside)
        cost, goal = self._search(_grow(target) & (inside | safe), max_cost=30, masks=(inside, safe))
        if goal is None:
            return (yield from self._tunnel_on(inside, safe))
        if not (yield from self._dig_along(self._path_to(cost, goal, inside))):
            return False
        for d in DIRS:
            cell = (goal[0] + d[0], goal[1] + d[1])
            if _at(target, cell):
                if tuple(self.env.player.facing) != d:
                    yield MOVES[d]
                if wanted == ["water"]:
                    return (yield from self._drink(max_cost=2, enough=9))
                yield A["do"]
                if self._walkable_lut[mat[cell]] and _grow(outside)[cell] and self.inv["stone"]:
                    yield A["place_stone"]  # mining it opened the pocket: close it again
                return True
        return False

    def _tunnel_on(self, inside: np.ndarray, safe: np.ndarray) -> Iterator[int]:
        """From a cell of the pocket, dig straight on a few cells, preferring directions that reveal
        unseen cells."""
        options, gains = [], []
        for x, y in np.argwhere(inside).tolist():
            for d in DIRS:
                n = 0
                while n < 8 and _at(safe, (x + d[0] * (n + 1), y + d[1] * (n + 1))):
                    n += 1
                if n:
                    ex, ey = x + d[0] * n, y + d[1] * n
                    view = self.seen[max(0, ex - VIEW[0]):ex + VIEW[0] + 1, max(0, ey - VIEW[1]):ey + VIEW[1] + 1]
                    options.append(((x, y), d, n))
                    gains.append(1.0 + view.size - view.sum())
        if not options:
            self._tunnel_after = self._t + 20
            return False
        p = np.asarray(gains) / sum(gains)
        (x, y), d, n = options[int(self.rng.choice(len(options), p=p))]
        path = []
        if (x, y) != self._pos():
            start = np.zeros_like(inside)
            start[x, y] = True
            cost, goal = self._search(start, max_cost=POCKET_CELLS, masks=(inside, safe))
            if goal is None:
                return False
            path = self._path_to(cost, goal, inside)
        n = min(n, int(self.rng.integers(2, 7)))
        return (yield from self._dig_along(path + [(x + d[0] * k, y + d[1] * k) for k in range(1, n + 1)]))

    def _dig_along(self, path: list) -> Iterator[int]:
        """Follow a tunnel path, walling off the tunnel behind on straight stretches (a step back
        faces the cell two behind) so the pocket stays small: skeletons appear on paths out of sight."""
        for cell in path:
            before = self._pos()
            if not (yield from self._follow([cell])):
                return False
            e = (cell[0] - before[0], cell[1] - before[1])
            behind = (before[0] - e[0], before[1] - e[1])
            material, obj = self.env.world[behind]
            if material in WALKABLE and obj is None and self.inv["stone"]:
                yield MOVES[(-e[0], -e[1])]  # back into the cell before, facing the one behind it
                if self._pos() == before and self._faced() == behind:
                    yield A["place_stone"]
                yield MOVES[e]
        return True

    def _can_make_here(self, tool: str) -> bool:
        """Whether the inventory pays for ``tool`` and for the stations missing next to the player."""
        cost = dict(constants.make[tool]["uses"])
        near = self.env.world.nearby(self._pos(), 1)[0]
        for station in constants.make[tool]["nearby"]:
            if station not in near:
                for item, n in constants.place[station]["uses"].items():
                    cost[item] = cost.get(item, 0) + n
        return all(self.inv[k] >= v for k, v in cost.items())

    def _craft_here(self, tool: str, safe: np.ndarray) -> Iterator[int]:
        """Make ``tool`` where the player stands, first digging a cell beside it to place each
        missing station (table, furnace) in."""
        for station in constants.make[tool]["nearby"]:
            if station in self.env.world.nearby(self._pos(), 1)[0]:
                continue
            x, y = self._pos()
            for i in self.rng.permutation(4):
                d = DIRS[i]
                if _at(safe, (x + d[0], y + d[1])):
                    break
            else:
                self._tunnel_after = self._t + 20
                return False
            if tuple(self.env.player.facing) != d:
                yield MOVES[d]
            yield A["do"]
            yield A[f"place_{station}"]
            if station not in self.env.world.nearby(self._pos(), 1)[0]:
                return False
        yield A[f"make_{tool}"]
        return True

    def _region(self, limit: int) -> set | None:
        """The ground cells connected to the player's, or ``None`` when there are more than ``limit``."""
        world = self.env.world
        start = self._pos()
        cells, stack = {start}, [start]
        while stack:
            x, y = stack.pop()
            for dx, dy in DIRS:
                nxt = (x + dx, y + dy)
                if nxt not in cells and world[nxt][0] in (*WALKABLE, "lava"):
                    cells.add(nxt)
                    stack.append(nxt)
                    if len(cells) > limit:
                        return None
        return cells

    # -- navigation -----------------------------------------------------------------------------
    def _maps(self):
        """``(walk, dig, free, danger)`` masks of the world for this step.

        walk: free ground the player may step on; dig: cells it can clear with its tools on the
        way; free: no creature or object; danger: lava and its neighbours (never entered).
        """
        if self._maps_t != self._t:
            world = self.env.world
            mat = world._mat_map
            lava = mat == self._ids["lava"]
            danger = lava | _grow(lava)
            free = world._obj_map == 0
            walk = self._walkable_lut[mat] & free & ~danger
            walk[self._pos()] = True
            minable = [m for m in MINABLE
                       if all(self.inv[k] >= v for k, v in constants.collect[m]["require"].items())]
            dig = self._lut(minable)[mat] & ~danger
            for cell in self._walls:
                dig[cell] = False
            self._maps_cache, self._maps_t = (walk, dig, free, danger), self._t
        return self._maps_cache

    def _search(self, goal: np.ndarray | None, max_cost: int, dig: bool = True, masks=None):
        """Breadth-first search from the player; walking into a cell costs 1, digging it 1 + DIG_COST.

        ``masks``: the ``(walk, dig)`` cells to use instead of :meth:`_maps`'. Returns the cost map
        (-1 where not reached) and a goal cell of lowest cost (or ``None``).
        """
        walk, digmask = masks or self._maps()[:2]
        start = self._pos()
        cost = np.full(walk.shape, -1, np.int32)
        cost[start] = 0
        if goal is not None and goal[start]:
            return cost, start
        frontier = np.zeros(walk.shape, bool)
        frontier[start] = True
        reached = frontier.copy()
        pending = [np.zeros_like(frontier) for _ in range(DIG_COST)]  # dug cells, entered later
        for k in range(1, max_cost + 1):
            around = _grow(frontier) & ~reached
            due = pending.pop(0)
            pending.append(np.zeros_like(frontier))
            if dig:
                dug = around & digmask
                pending[-1] |= dug
                reached |= dug
            frontier = (around & walk) | due
            reached |= frontier
            cost[frontier] = k
            if goal is not None:
                hits = np.argwhere(frontier & goal)
                if len(hits):
                    return cost, tuple(int(v) for v in hits[int(self.rng.integers(len(hits)))])
            if not frontier.any() and not any(p.any() for p in pending):
                break
        return cost, None

    def _path_to(self, cost: np.ndarray, cell, walk: np.ndarray | None = None) -> list:
        """The cells from the player (excluded) to ``cell``, from a cost map of :meth:`_search` this step
        (``walk``: the walk mask it used, if not :meth:`_maps`')."""
        walk = self._maps()[0] if walk is None else walk
        width, height = cost.shape
        path = [cell]
        while cost[cell] > 0:
            step = 1 if walk[cell] else 1 + DIG_COST
            for dx, dy in DIRS:
                prev = (cell[0] + dx, cell[1] + dy)
                if 0 <= prev[0] < width and 0 <= prev[1] < height and cost[prev] == cost[cell] - step:
                    break
            else:
                return path[::-1]
            cell = prev
            path.append(cell)
        return path[-2::-1]

    def _follow(self, path: list) -> Iterator[int]:
        """Walk along ``path``, digging through minable cells; returns whether it got to the end."""
        for cell in path:
            for _ in range(5):
                if self._pos() == cell:
                    break
                action = self._step_into(cell)
                if action is None:
                    return False
                yield action
            else:
                return False
        return True

    def _step_into(self, cell) -> int | None:
        """The action that brings the player closer to entering the adjacent ``cell`` (None: it can't)."""
        pos = self._pos()
        d = (cell[0] - pos[0], cell[1] - pos[1])
        material, obj = self.env.world[cell]
        if d not in MOVES or obj is not None or material is None or self._maps()[3][cell]:
            return None
        if material in WALKABLE:
            return MOVES[d]
        if tuple(self.env.player.facing) != d:
            return MOVES[d]  # turn to face it: it blocks, so the player doesn't move
        return A["do"] if self._maps()[1][cell] else None

    def _go_face(self, target_fn, max_cost: int = 40) -> Iterator[int]:
        """Walk (digging if need be) next to a cell of the mask ``target_fn()`` returns, and face it.

        Targets must block walking (materials, creatures). Returns the faced cell, or ``None``.
        """
        for _ in range(3):
            target = target_fn()
            if not target.any():
                return None
            walk, dig, _, _ = self._maps()
            cost, goal = self._search(_grow(target) & (walk | dig), max_cost)
            if goal is None:
                return None
            if not (yield from self._follow(self._path_to(cost, goal))):
                continue
            target = target_fn()
            for d in DIRS:
                cell = (goal[0] + d[0], goal[1] + d[1])
                if 0 <= cell[0] < target.shape[0] and 0 <= cell[1] < target.shape[1] and target[cell]:
                    if tuple(self.env.player.facing) != d:
                        yield MOVES[d]
                    if self._faced() == cell:
                        return cell
        return None

    def _go_face_free(self, target: np.ndarray, stand_ok: np.ndarray | None = None, max_cost: int = 20):
        """Face a free cell of ``target`` (to place something on it) from a cell where ``stand_ok`` holds.

        Facing a free cell means arriving on the cell before it by a step toward it, so the search
        goes to an *approach* cell two steps short (digging if need be). Returns whether the player
        faces such a cell.
        """
        walk, dig, _, _ = self._maps()
        faced = self._faced()
        inside = 0 <= faced[0] < target.shape[0] and 0 <= faced[1] < target.shape[1]
        if inside and target[faced] and (stand_ok is None or stand_ok[self._pos()]):
            return True
        room = walk | dig
        stands = {}
        approach = np.zeros_like(walk)
        for d in DIRS:
            stand = room & _shift(target, *d)
            if stand_ok is not None:
                stand &= stand_ok
            stands[d] = stand
            approach |= room & _shift(stand, *d)
        cost, goal = self._search(approach, max_cost)
        if goal is None or not (yield from self._follow(self._path_to(cost, goal))):
            return False
        for i in self.rng.permutation(4):
            d = DIRS[i]
            stand = (goal[0] + d[0], goal[1] + d[1])
            if 0 <= stand[0] < walk.shape[0] and 0 <= stand[1] < walk.shape[1] and stands[d][stand]:
                if not (yield from self._follow([stand])):
                    return False
                faced = self._faced()
                return self._pos() == stand and target[faced] and self.env.world[faced][1] is None
        return False

    def _place_block_at(self, cell) -> Iterator[int]:
        target = np.zeros(self.seen.shape, bool)
        target[cell] = True
        if not (yield from self._go_face_free(target, max_cost=20)):
            return False
        yield self._block()
        return self.env.world[cell][0] in SOLID

    # -- reading the world ----------------------------------------------------------------------
    def _pos(self) -> tuple[int, int]:
        pos = self.env.player.pos
        return int(pos[0]), int(pos[1])

    def _faced(self) -> tuple[int, int]:
        (x, y), (dx, dy) = self._pos(), self.env.player.facing
        return x + int(dx), y + int(dy)

    def _lut(self, names) -> np.ndarray:
        lut = np.zeros(256, bool)
        lut[[self._ids[name] for name in names if name in self._ids]] = True
        return lut

    def _is(self, material: str) -> np.ndarray:
        return self.env.world._mat_map == self._ids[material]

    def _near(self, material: str) -> np.ndarray:
        """Cells from which a seen ``material`` cell is *nearby* in Crafter's sense (3x3 around)."""
        return _grow8(self.seen & self._is(material))

    def _known_near(self, material: str, radius: int) -> bool:
        x, y = self._pos()
        window = np.s_[max(0, x - radius):x + radius + 1, max(0, y - radius):y + radius + 1]
        return bool((self.seen[window] & (self.env.world._mat_map[window] == self._ids[material])).any())

    def _creatures(self, kind, radius: int) -> list:
        """Living creatures of ``kind`` within ``radius`` (Chebyshev) of the player."""
        world = self.env.world
        x, y = self._pos()
        ids = world._obj_map[max(0, x - radius):x + radius + 1, max(0, y - radius):y + radius + 1]
        found = [world._objects[i] for i in ids[ids > 0].tolist()]
        return [obj for obj in found if isinstance(obj, kind) and obj.health > 0]

    def _threats(self, radius: int) -> list:
        """Zombies within two steps and skeletons within ``radius`` steps."""
        x, y = self._pos()
        close = []
        for obj in self._creatures((objects.Zombie, objects.Skeleton), radius):
            dist = abs(int(obj.pos[0]) - x) + abs(int(obj.pos[1]) - y)
            if dist <= (2 if isinstance(obj, objects.Zombie) else radius):
                close.append(obj)
        return close

    def _ripe_plants(self) -> np.ndarray:
        world = self.env.world
        mask = np.zeros(self.seen.shape, bool)
        for obj in world.objects:
            if isinstance(obj, objects.Plant) and obj.ripe and self.seen[tuple(obj.pos)]:
                mask[tuple(obj.pos)] = True
        return mask

    def _safe(self, action: int) -> int:
        """Never step onto lava (the player would die)."""
        for d, move in MOVES.items():
            if action == move:
                x, y = self._pos()
                if self.env.world[(x + d[0], y + d[1])][0] == "lava":
                    return A["noop"]
        return action
