import numpy as np
from crafter import objects

from ptgm.data.generate import coverage_table
from ptgm.domains import get_domain
from ptgm.domains.crafter.env import ACTIONS
from ptgm.domains.crafter.player import RANK


def test_scripted_player_unlocks_what_it_claims():
    """Across a few episodes the player gathers, crafts, mines, drinks and eats; every achievement it
    reports in step infos is really unlocked in Crafter's own bookkeeping."""
    domain = get_domain("crafter")
    env = domain.make_env(None, max_steps=600)
    rng = np.random.default_rng(0)
    episodes = []
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        player = domain.scripted_player(env, rng)
        infos, done = [info], False
        while not done:
            obs, reward, terminated, truncated, info = env.step(player(obs))
            assert reward == 0.0  # play never sees a task reward
            infos.append(info)
            done = terminated or truncated
        claimed = domain.episode_achievements(infos)
        actual = {name for name, count in env.player.achievements.items() if count > 0}
        assert claimed == actual
        episodes.append({"achievements": sorted(claimed)})
    coverage = coverage_table(episodes, ["collect_wood", "place_table", "make_wood_pickaxe", "collect_drink",
                                         "eat_cow", "collect_stone", "make_stone_pickaxe"])
    assert coverage["collect_wood"] == 1.0
    assert coverage["place_table"] >= 0.75
    assert coverage["make_wood_pickaxe"] >= 0.75
    assert coverage["collect_drink"] >= 0.75
    assert coverage["eat_cow"] >= 0.5
    assert coverage["collect_stone"] >= 0.75
    assert coverage["make_stone_pickaxe"] >= 0.4


def test_scripted_player_survives_shelters_and_climbs():
    """Over full-length play episodes the player lives most of the step limit, never steps on lava,
    sleeps walled in (zombies hit a sleeper for 7), and gets to stone tools and iron."""
    domain = get_domain("crafter")
    env = domain.make_env(None, max_steps=1000)
    rng = np.random.default_rng(1)
    lengths, episodes, asleep, asleep_walled = [], [], 0, 0
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        player = domain.scripted_player(env, rng)
        infos, done = [info], False
        while not done:
            obs, _, terminated, truncated, info = env.step(player(obs))
            infos.append(info)
            done = terminated or truncated
            crafter_player = env.unwrapped.player
            assert env.unwrapped.world[crafter_player.pos][0] != "lava"
            if crafter_player.sleeping:
                asleep += 1
                asleep_walled += player._enclosed()
        lengths.append(len(infos) - 1)
        episodes.append({"achievements": sorted(domain.episode_achievements(infos))})
    coverage = coverage_table(episodes, ["make_stone_pickaxe", "make_stone_sword", "collect_iron", "wake_up"])
    assert np.mean(lengths) >= 600
    assert asleep > 0 and asleep_walled / asleep >= 0.9
    assert coverage["make_stone_pickaxe"] >= 0.5
    assert coverage["make_stone_sword"] >= 0.25
    assert coverage["wake_up"] >= 0.5
    assert coverage["collect_iron"] > 0.0


def _fresh_player(seed: int = 0):
    """A player at the start of an episode, with the world's creatures within 12 cells removed (so
    none interferes with the situation a test sets up)."""
    domain = get_domain("crafter")
    env = domain.make_env(None, max_steps=1000)
    env.reset(seed=seed)
    game = env.unwrapped
    for obj in list(game.world.objects):
        if obj is not game.player and game.player.distance(obj) <= 12:
            game.world.remove(obj)
    return env, game, domain.scripted_player(env, np.random.default_rng(seed))


def test_player_fights_an_adjacent_zombie():
    """A zombie next to the player is turned to and hit until it dies."""
    env, game, player = _fresh_player()
    x, y = (int(v) for v in game.player.pos)
    for cell in ((x + 1, y), (x + 2, y), (x + 1, y + 1), (x + 1, y - 1)):
        game.world[cell] = "grass"
    zombie = objects.Zombie(game.world, (x + 1, y), game.player)
    game.world.add(zombie)
    actions = []
    while zombie.health > 0 and len(actions) < 8:
        actions.append(ACTIONS[player(None)])
        assert player.intention == "defend"
        env.step(ACTIONS.index(actions[-1]))
    assert zombie.health <= 0  # a zombie has 5 health, a hit without a sword takes 1
    assert actions[1:] == ["do"] * (len(actions) - 1) and actions[0] in ("move_right", "do")


def test_night_interrupts_a_chosen_intention():
    """Falling dark sends the player to its shelter even while it is on a chosen errand (``eat``)."""
    env, game, player = _fresh_player()
    x, y = (int(v) for v in game.player.pos)
    for dx in range(1, 7):
        game.world[(x + dx, y)] = "grass"
    game.world.add(objects.Cow(game.world, (x + 6, y)))
    game.player.inventory["stone"] = 9  # to wall itself in with
    game.world.daylight = 0.95
    player._start("eat")
    player(None)
    assert player.intention == "eat"
    game.world.daylight = 0.5  # (falling from the previous step's daylight)
    player(None)
    assert player.intention == "sleep"


def test_player_waits_walled_in_while_zombies_linger_after_dawn():
    """Walled in at dawn with a zombie just outside, the player stays in; with none it goes out."""
    for with_zombie in (True, False):
        env, game, player = _fresh_player()
        x, y = (int(v) for v in game.player.pos)
        for dx in range(-4, 4):
            for dy in range(-2, 3):
                game.world[(x + dx, y + dy)] = "stone"
        game.world[(x, y)] = game.world[(x + 1, y)] = "grass"  # the two-cell pocket
        for dx in (-4, -3, -2):
            game.world[(x + dx, y)] = "grass"
        if with_zombie:
            game.world.add(objects.Zombie(game.world, (x - 3, y), game.player))
        assert player._enclosed()
        game.world.daylight = 0.95
        player._start("sleep", RANK["sleep"])
        actions = [ACTIONS[player(None)] for _ in range(10)]
        if with_zombie:
            assert actions == ["noop"] * 10 and player.intention == "sleep"
        else:
            assert player.intention != "sleep"
