import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ptgm.domains import get_domain
from ptgm.domains.crafter.env import (
    ACTIONS,
    FACING_OFFSET,
    INVENTORY_OFFSET,
    ITEMS,
    N_CHANNELS,
    OBS_DIM,
    VIEW_H,
    VIEW_SIZE,
    VIEW_W,
    CrafterEnv,
    CrafterTask,
)
from ptgm.domains.crafter.features import GOAL_DIM, goal_features, render_observation
from ptgm.utils import PTGMError


def test_env_passes_gymnasium_checker():
    check_env(CrafterEnv("collect_wood"), skip_render_check=True)


def test_observation_layout_matches_world():
    env = CrafterEnv("collect_stone")
    obs, _ = env.reset(seed=3)
    assert obs.shape == (OBS_DIM,) and obs.dtype == np.uint8
    inventory = obs[INVENTORY_OFFSET:INVENTORY_OFFSET + len(ITEMS)]
    assert list(inventory) == [env.player.inventory[name] for name in ITEMS]
    assert inventory[ITEMS.index("wood_pickaxe")] == 1  # the task's starting inventory
    view = obs[:VIEW_SIZE].reshape(VIEW_H, VIEW_W, N_CHANNELS)
    # Every in-world cell has exactly one material; the player's own cell is in the centre.
    assert (view[..., :12].sum(-1) == 1).all()
    world = env.world
    px, py = env.player.pos
    centre_material = world[(px, py)][0]
    from ptgm.domains.crafter.env import MATERIALS
    assert view[VIEW_H // 2, VIEW_W // 2, MATERIALS.index(centre_material)] == 1
    right_material = world[(px + 1, py)][0]
    assert view[VIEW_H // 2, VIEW_W // 2 + 1, MATERIALS.index(right_material)] == 1
    assert obs[FACING_OFFSET:FACING_OFFSET + 4].sum() == 1


def test_reset_is_reproducible_from_seed():
    a, b = CrafterEnv("collect_wood"), CrafterEnv("collect_wood")
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    assert np.array_equal(oa, ob)
    for action in [1, 2, 3, 4, 5, 1, 1]:
        oa = a.step(action)[0]
        ob = b.step(action)[0]
    assert np.array_equal(oa, ob)
    oc, _ = b.reset(seed=12)
    assert not np.array_equal(oa, oc)


def _face_tree(env: CrafterEnv) -> bool:
    """Move the player next to a tree, facing it (test set-up by editing the world)."""
    world, player = env.world, env.player
    x, y = player.pos
    obj = world[(x + 1, y)][1]
    if obj is not None:
        world.remove(obj)
    world[(x + 1, y)] = "tree"
    player.facing = (1, 0)
    return True


def test_task_reward_and_termination_on_unlock():
    env = CrafterEnv("collect_wood")
    env.reset(seed=0)
    _face_tree(env)
    obs, reward, terminated, truncated, info = env.step(ACTIONS.index("do"))
    assert reward == 1.0 and terminated and not truncated and info["is_success"]
    assert "collect_wood" in info["achievements"]


def test_truncation_at_step_limit_and_no_reward_for_other_achievements():
    env = CrafterEnv(CrafterTask("collect_diamond", {}, max_steps=3))
    env.reset(seed=0)
    _face_tree(env)
    _, reward, terminated, truncated, info = env.step(ACTIONS.index("do"))
    assert reward == 0.0 and not terminated and "collect_wood" in info["achievements"]
    env.step(0)
    _, _, terminated, truncated, _ = env.step(0)
    assert truncated and not terminated


def test_play_env_has_no_reward():
    env = CrafterEnv(None)
    env.reset(seed=0)
    _face_tree(env)
    _, reward, terminated, _, info = env.step(ACTIONS.index("do"))
    assert reward == 0.0 and not terminated and info["achievements"] == ["collect_wood"]


@pytest.mark.parametrize("bad", ["collect_woood", "fly"])
def test_unknown_task_is_a_clear_error(bad):
    with pytest.raises(PTGMError, match="Unknown Crafter task"):
        CrafterEnv(bad)


def test_unknown_start_item_is_a_clear_error():
    with pytest.raises(PTGMError, match="inventory item"):
        CrafterEnv(CrafterTask("collect_wood", {"golden_apple": 1}))


def test_any_achievement_is_a_task():
    domain = get_domain("crafter")
    assert "place_table" in domain.task_names()
    env = domain.make_env("place_table")
    assert env.task.achievement == "place_table"


def test_goal_features_and_pictures():
    env = CrafterEnv("collect_wood", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    _face_tree(env)
    obs, *_ = env.step(ACTIONS.index("noop"))
    feats = goal_features(obs)
    assert feats.shape == (1, GOAL_DIM) and feats.dtype == np.float32
    assert 0.0 <= feats.min() and feats.max() <= 1.0
    img = render_observation(obs)
    assert img.shape == (144, 144, 3) and img.dtype == np.uint8 and img.std() > 0
    assert env.render().shape == (64, 64, 3)
    with pytest.raises(ValueError, match="shape"):
        goal_features(np.zeros((2, OBS_DIM + 1), np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fast_world_generation_matches_crafter(seed):
    from crafter import engine, objects
    from crafter import worldgen as crafter_worldgen

    from ptgm.domains.crafter import worldgen

    def build(generate):
        world = engine.World((64, 64), list(__import__("crafter").constants.materials), (12, 12))
        world.reset(seed=seed)
        player = objects.Player(world, (32, 32))
        world.add(player)
        generate(world, player)
        creatures = sorted((type(o).__name__, tuple(int(v) for v in o.pos)) for o in world.objects)
        return world._mat_map.copy(), creatures, world.random.uniform()

    ours, theirs = build(worldgen.generate_world), build(crafter_worldgen.generate_world)
    assert np.array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2]  # the same number of random draws was consumed


def _place(env: CrafterEnv, material: str) -> None:
    """Put ``material`` in front of the player (test set-up by editing the world)."""
    x, y = env.player.pos
    obj = env.world[(x + 1, y)][1]
    if obj is not None:
        env.world.remove(obj)
    env.world[(x + 1, y)] = material
    env.player.facing = (1, 0)


def test_a_chain_rewards_each_step_in_order_and_ends_at_the_last():
    env = CrafterEnv("collect_wood,place_table")
    env.reset(seed=0)
    assert env.task.chain == ("collect_wood", "place_table")
    env.player.inventory["wood"] = 5  # a table costs wood: placing one before collecting any is out of order
    _place(env, "grass")
    _, reward, terminated, _, info = env.step(ACTIONS.index("place_table"))
    assert reward == 0.0 and not terminated and "place_table" in info["achievements"]
    _place(env, "tree")
    _, reward, terminated, _, info = env.step(ACTIONS.index("do"))
    assert reward == 1.0 and not terminated and not info["is_success"]
    env.player.inventory["wood"] = 5
    _place(env, "grass")
    _, reward, terminated, _, info = env.step(ACTIONS.index("place_table"))
    assert reward == 1.0 and terminated and info["is_success"]
    assert info["episode_achievements"] == ["collect_wood", "place_table"]


@pytest.mark.parametrize("task, message", [
    ("collect_wood,fly", "unknown achievement 'fly'"),
    ("collect_wood,collect_wood", "names an achievement twice"),
])
def test_bad_chains_are_clear_errors(task, message):
    with pytest.raises(PTGMError, match=message):
        CrafterEnv(task)


def test_start_inventory_adds_to_the_task_and_checks_names():
    from ptgm.domains.crafter.env import parse_inventory

    env = CrafterEnv("collect_iron", start_inventory=parse_inventory(("stone_pickaxe=1", "wood=3")))
    obs, _ = env.reset(seed=0)
    assert env.player.inventory["stone_pickaxe"] == 1 and env.player.inventory["wood"] == 3
    assert obs[INVENTORY_OFFSET + ITEMS.index("stone_pickaxe")] == 1
    assert CrafterEnv("collect_iron").task.start_inventory == {}  # the long tasks start empty
    with pytest.raises(PTGMError, match="Unknown Crafter item 'golden_apple'.*wood_pickaxe"):
        parse_inventory(("golden_apple=1",))
    with pytest.raises(PTGMError, match="NAME=N"):
        parse_inventory(("wood=12",))
    with pytest.raises(PTGMError, match="no inventory"):
        get_domain("kitchen").parse_start_inventory(("wood=1",))


def test_the_crafter_benchmark_task_pays_crafters_own_reward():
    env = CrafterEnv("crafter")
    env.reset(seed=0)
    assert env.max_steps == 10_000
    health = env.player.health
    _place(env, "tree")
    _, reward, terminated, _, info = env.step(ACTIONS.index("do"))
    assert reward == pytest.approx(1.0 + (env.player.health - health) / 10) and not terminated
    _place(env, "tree")
    health = env.player.health
    _, reward, *_ = env.step(ACTIONS.index("do"))  # wood again: no first unlock, no reward
    assert reward == pytest.approx((env.player.health - health) / 10)
    assert not info["is_success"]


def test_crafter_score_is_the_geometric_mean_of_success_rates():
    from ptgm.domains.crafter import crafter_score
    from ptgm.domains.crafter.env import ACHIEVEMENTS

    assert crafter_score({}) == pytest.approx(0.0)
    assert crafter_score({name: 1.0 for name in ACHIEVEMENTS}) == pytest.approx(100.0)
    assert crafter_score({name: 0.5 for name in ACHIEVEMENTS}) == pytest.approx(50.0)
    # One achievement at 100% and the others at 0: exp(ln(101) / 22) - 1.
    assert crafter_score({"collect_wood": 1.0}) == pytest.approx(np.exp(np.log(101) / 22) - 1)


def test_fast_step_replays_crafters_own_step():
    """The headless game's step (integer distances, chunk counts at once, no semantic map) leaves every
    world in exactly the state Crafter's own step does, draw for draw."""
    import crafter

    from ptgm.domains.crafter.env import _HeadlessCrafter

    class Reference(_HeadlessCrafter):
        step = crafter.Env.step
        _balance_object = crafter.Env._balance_object

    def state(game):
        creatures = sorted((type(o).__name__, tuple(o.pos.tolist()), o.health) for o in game._world.objects)
        return game._world._mat_map.tobytes(), creatures, dict(game._player.inventory), game._world.random.uniform()

    rng = np.random.default_rng(0)
    for seed in (0, 1):
        ours, theirs = _HeadlessCrafter(reward=True, length=400, seed=seed), Reference(reward=True, length=400, seed=seed)
        ours.reset(), theirs.reset()
        for step in range(400):
            action = int(rng.integers(len(ACTIONS)))
            _, reward, done, info = ours.step(action)
            _, ref_reward, ref_done, ref_info = theirs.step(action)
            assert (reward, done) == (ref_reward, ref_done)
            assert info["achievements"] == ref_info["achievements"]
            if step % 50 == 49:
                assert state(ours) == state(theirs), f"seed {seed}: the worlds differ after step {step + 1}"


@pytest.mark.parametrize("where", ["inside", "corner"])
def test_every_view_cell_shows_its_material_inside_the_world_and_at_its_edge(where):
    from ptgm.domains.crafter.env import MATERIALS

    env = CrafterEnv("collect_wood")
    env.reset(seed=5)
    if where == "corner":  # the view hangs over the world's edge: cells outside are all zeros
        target = np.array((1, 2))
        if env.world[target][1] is not None:
            env.world.remove(env.world[target][1])
        env.world.move(env.player, target)
    obs = env._observation()
    view = obs[:VIEW_SIZE].reshape(VIEW_H, VIEW_W, N_CHANNELS)
    px, py = env.player.pos.tolist()
    for r in range(VIEW_H):
        for c in range(VIEW_W):
            material, _ = env.world[(px - VIEW_W // 2 + c, py - VIEW_H // 2 + r)]
            expected = np.zeros(len(MATERIALS), np.uint8)
            if material is not None:
                expected[MATERIALS.index(material)] = 1
            assert np.array_equal(view[r, c, :len(MATERIALS)], expected), (r, c)
