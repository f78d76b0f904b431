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
                                         "eat_cow", "collect_stone"])
    assert coverage["collect_wood"] >= 0.75
    assert coverage["place_table"] >= 0.5
    assert coverage["make_wood_pickaxe"] >= 0.4
    assert coverage["collect_drink"] >= 0.5
    assert coverage["eat_cow"] >= 0.4
    assert coverage["collect_stone"] > 0.0
