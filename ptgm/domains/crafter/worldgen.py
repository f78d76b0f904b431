"""Crafter's world generation, with the noise computed on whole grids at once.

Crafter generates a world cell by cell, calling OpenSimplex noise about 30,000 times
from Python (~0.15 s per reset even with numba), which dominates short RL episodes.
This module evaluates each noise field on the whole 64x64 grid with OpenSimplex's
array API and decides every cell that needs no random draw on the whole grid; the
cells that try something at random (ore, trees, creatures) are walked in Crafter's
order by a compiled loop over a block of draws, so ``world.random`` yields exactly
the same sequence: the worlds are the same as ``crafter.worldgen.generate_world``
makes (a test checks it), about 20x faster.
"""

from __future__ import annotations

import numba
import numpy as np
import opensimplex
from crafter import constants, objects


def _field(simplex: opensimplex.OpenSimplex, x_arg: np.ndarray, y_arg: np.ndarray, z: float, sizes,
           normalize: bool = True) -> np.ndarray:
    """Crafter's ``_simplex`` on a grid: ``[x, y] -> Σ w · noise3(x_arg[x]/size, y_arg[y]/size, z)``."""
    if not isinstance(sizes, dict):
        sizes = {sizes: 1}
    value = 0
    for size, weight in sizes.items():
        noise = simplex.noise3array(x_arg / size, y_arg / size, np.array([float(z)]))[0].T  # -> [x, y]
        value = value + weight * noise
    if normalize:
        value = value / sum(sizes.values())
    return value


def generate_world(world, player) -> None:
    """Fill ``world`` around ``player`` exactly as Crafter's own generator would."""
    # OpenSimplex's array noise is a parallel numba loop; on a 64x64 grid threads do not pay for their
    # start-up, and beside other environments or workers they fight over the cores (~5x slower resets).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _generate(world, player)
    finally:
        numba.set_num_threads(threads)


def _generate(world, player) -> None:
    simplex = opensimplex.OpenSimplex(seed=world.random.randint(0, 2**31 - 1))
    width, height = world.area
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    start = 4 - np.sqrt((gx - player.pos[0]) ** 2 + (gy - player.pos[1]) ** 2)
    start = start + 2 * _field(simplex, xs, ys, 8, 3)
    start = 1 / (1 + np.exp(-start))
    water = _field(simplex, xs, ys, 3, {15: 1, 5: 0.15}, False) + 0.1
    water = water - 2 * start
    mountain = _field(simplex, xs, ys, 0, {15: 1, 5: 0.3})
    mountain = mountain - (4 * start + 0.3 * water)
    cave = _field(simplex, xs, ys, 6, 7)
    horizontal = _field(simplex, 2 * xs, ys / 5, 7, 3)
    vertical = _field(simplex, xs / 5, 2 * ys, 7, 3)
    coal = _field(simplex, xs, ys, 1, 8)
    iron = _field(simplex, xs, ys, 2, 6)
    lava = _field(simplex, xs, ys, 6, 5)
    sand = _field(simplex, xs, ys, 4, 9)
    tree = _field(simplex, xs, ys, 5, 7)

    ids = {name: world._mat_ids[name] for name in constants.materials}

    # Cells whose material needs no random draw are decided on the whole grid at once; only the cells that
    # try something at random are walked, in Crafter's cell order (x, then y).
    land = start <= 0.5
    rock = land & (mountain > 0.15)
    cave_path = rock & (cave > 0.15) & (mountain > 0.3)
    tunnels = rock & ~cave_path & ((horizontal > 0.4) | (vertical > 0.4))
    ore = rock & ~cave_path & ~tunnels
    low = land & ~rock
    sand_cells = low & (water > 0.25) & (water <= 0.35) & (sand > -0.2)
    water_cells = low & ~sand_cells & (water > 0.3)
    tree_cells = low & ~sand_cells & ~water_cells & (tree > 0)
    mat = np.full((width, height), ids["grass"], np.uint8)
    mat[cave_path | tunnels] = ids["path"]
    mat[ore] = np.where((mountain > 0.3) & (lava > 0.35), ids["lava"], ids["stone"])[ore]
    mat[sand_cells] = ids["sand"]
    mat[water_cells] = ids["water"]
    # An ore cell tries coal, then iron, then diamond (each only where its noise allows it) and keeps the
    # first success; a tree cell tries once.
    tries = np.stack([np.where(coal > 0, 0.85, np.nan), np.where(iron > 0.4, 0.75, np.nan),
                      np.where(mountain > 0.18, 0.994, np.nan)], -1)
    tries[tree_cells] = (0.8, np.nan, np.nan)
    draws = _Draws(world.random)
    first = draws.first_successes(tries[ore | tree_cells])
    cells = np.flatnonzero(ore | tree_cells)[first >= 0]
    first = first[first >= 0]
    mat.flat[cells] = np.where(tree_cells.flat[cells], ids["tree"],
                               np.array([ids["coal"], ids["iron"], ids["diamond"]])[first])
    world._mat_map[:] = mat

    # Creatures on walkable cells: a cow (grass further than 3 from the player), else a zombie (further
    # than 10), else a skeleton (in a tunnel), each tried only where it may appear, the first success kept.
    walkable = np.isin(mat, [ids[name] for name in constants.walkable])
    dist = np.sqrt((gx - player.pos[0]) ** 2 + (gy - player.pos[1]) ** 2)
    tries = np.stack([np.where((dist > 3) & (mat == ids["grass"]), 0.985, np.nan),
                      np.where(dist > 10, 0.993, np.nan),
                      np.where((mat == ids["path"]) & tunnels, 0.95, np.nan)], -1)
    makers = (lambda pos: objects.Cow(world, pos), lambda pos: objects.Zombie(world, pos, player),
              lambda pos: objects.Skeleton(world, pos, player))
    first = draws.first_successes(tries[walkable])
    for cell, which in zip(np.flatnonzero(walkable)[first >= 0].tolist(), first[first >= 0].tolist()):
        world.add(makers[which](divmod(cell, height)))
    draws.finish()


class _Draws:
    """Crafter's ``world.random.uniform()`` calls, drawn from the generator in blocks.

    A block of ``n`` doubles is the same stream as ``n`` single ``uniform()`` calls; :meth:`finish` rewinds
    the generator and consumes exactly the draws used, leaving it where Crafter's generator would be.
    """

    def __init__(self, random: np.random.RandomState):
        self.random, self.state = random, random.get_state()
        self.values = np.zeros(0)
        self.used = 0

    def first_successes(self, tries: np.ndarray) -> np.ndarray:
        """For cells in Crafter's order, the index of each one's first successful try (-1: none).

        ``tries[i]`` holds cell ``i``'s thresholds, NaN where it has no such try; a try draws once and
        succeeds when the draw exceeds its threshold; a cell stops at its first success.
        """
        needed = self.used + int(np.count_nonzero(~np.isnan(tries)))
        if needed > len(self.values):
            self.values = np.concatenate([self.values, self.random.random_sample(needed - len(self.values))])
        first, self.used = _walk_tries(np.ascontiguousarray(tries, np.float64), self.values, self.used)
        return first

    def finish(self) -> None:
        self.random.set_state(self.state)
        self.random.random_sample(self.used)


@numba.njit(cache=True)
def _walk_tries(tries, values, used):  # pragma: no cover - compiled
    first = np.full(tries.shape[0], -1, np.int64)
    for cell in range(tries.shape[0]):
        for which in range(tries.shape[1]):
            threshold = tries[cell, which]
            if threshold == threshold:  # not NaN
                used += 1
                if values[used - 1] > threshold:
                    first[cell] = which
                    break
    return first, used
