import numpy as np

from ptgm.data.generate import coverage_table
from ptgm.domains import get_domain


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
