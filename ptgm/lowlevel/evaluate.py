"""Goal-reaching test of the low-level policy in the real environment.

A trial restores a dataset state by resetting the environment with the episode's
seed and replaying the recorded actions (the environments are deterministic given
seed and actions; a replay that diverges is skipped and counted). The policy is
then conditioned on the state the data reached ``horizon`` steps later and runs
for up to ``2 * horizon`` steps; the trial succeeds when ``domain.goal_reached``
holds at any step. Trials whose goal asks for no real change from the start
(``domain.goal_is_trivial``; for Crafter: the same tools and materials held) are skipped.
As a control, the same start is conditioned on a random other state's goal and we
count how often it reaches the data's goal anyway (what the policy does unguided).
"""

from __future__ import annotations

import numpy as np

from ptgm.data.dataset import TrajectoryData
from ptgm.domains.base import Domain
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.progress import progress


def _replay(env, data: TrajectoryData, episode: int, start_row: int, row: int):
    obs, _ = env.reset(seed=int(data.episode_seeds[episode]))
    for r in range(start_row, row):
        obs, *_ = env.step(data.actions[r])
    return obs


def _run_toward(env, domain: Domain, policy: GoalConditionedPolicy, obs, condition_obs, goal_obs,
                steps: int) -> bool:
    """Run the policy conditioned on ``condition_obs``; True once ``goal_obs`` is reached."""
    goal = domain.goal_features(condition_obs[None])[0]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(policy.act(obs, goal))
        if domain.goal_reached(obs, goal_obs):
            return True
        if terminated or truncated:
            return False
    return False


def goal_reaching_test(domain: Domain, data: TrajectoryData, policy: GoalConditionedPolicy, n_trials: int,
                       horizon: int, episodes: np.ndarray | None = None, seed: int = 0,
                       max_replay: int = 200) -> dict:
    """Success rates with the true goal and with a shuffled goal (see the module docstring)."""
    rng = np.random.default_rng(seed + 1)
    env = domain.make_env(None, max_steps=100_000)
    episodes = np.arange(data.n_episodes) if episodes is None else np.asarray(episodes)
    episodes = episodes[data.episode_seeds[episodes] >= 0]
    episode_start = np.searchsorted(data.episode_index, np.arange(data.n_episodes))
    reached = control = tried = diverged = trivial = 0
    bar = progress(total=n_trials, desc="goal-reaching test", leave=False)
    attempts = 0
    while tried < n_trials and len(episodes) and attempts < 100 * n_trials:
        attempts += 1
        ep = int(rng.choice(episodes))
        first, last = int(episode_start[ep]), int(data.episode_end[episode_start[ep]])
        if last - first <= horizon:
            continue
        row = first + int(rng.integers(0, min(last - first - horizon, max_replay) + 1))
        goal_obs = data.observations[row + horizon]
        start_obs = data.observations[row]
        if domain.goal_is_trivial(start_obs, goal_obs):
            trivial += 1
            continue
        obs = _replay(env, data, ep, first, row)
        if not np.array_equal(obs, start_obs):
            diverged += 1
            continue
        reached += _run_toward(env, domain, policy, obs, goal_obs, goal_obs, 2 * horizon)
        shuffled = data.observations[int(rng.integers(len(data.observations)))]
        obs = _replay(env, data, ep, first, row)
        control += _run_toward(env, domain, policy, obs, shuffled, goal_obs, 2 * horizon)
        tried += 1
        bar.update(1)
    bar.close()
    return {
        "trials": tried,
        "horizon": horizon,
        "success_rate": reached / max(tried, 1),
        "control_success_rate": control / max(tried, 1),
        "skipped_trivial_goal": trivial,
        "skipped_replay_diverged": diverged,
        "criterion": (domain.goal_reached.__doc__ or "").strip(),
    }
