"""`ptgm report`: the goals a trained high-level policy picks."""

import pytest

from ptgm.cli import main
from ptgm.report import ReportConfig, _runs, report, reward_pace
from ptgm.train import TrainConfig, train
from ptgm.utils import PTGMError


def test_consecutive_goals_are_collapsed():
    assert _runs([3, 3, 1, 3, 3, 3]) == [(3, 2), (1, 1), (3, 3)]
    assert _runs([]) == []


def test_reward_pace_times_each_unit_of_return():
    episode = {"rewards": [0.0, 1.0, 0.0, 2.0, 0.0], "env_steps": [10, 20, 30, 40, 50]}
    assert reward_pace(episode) == [20, 40, 40]  # two subtasks in one high-level step share its end
    assert reward_pace({"rewards": [0.0, 0.0], "env_steps": [10, 17]}) == []


def test_report_counts_every_high_level_step(tiny_run, tmp_path):
    train(TrainConfig(run_dir=str(tiny_run), method="ptgm", seed=7, env_steps=300, n_envs=2, n_steps=16,
                      eval_episodes=1))
    out = tmp_path / "report"
    summaries = report(ReportConfig(run_dir=str(tiny_run), seed=7, episodes=3, out=str(out)))
    usage = summaries["collect_wood"]
    assert usage["episodes"] == 3 and sum(usage["goal_counts"].values()) >= 3
    assert all(0 <= g < 8 for g in usage["goal_counts"])  # the tiny run's codebook has 8 goals
    assert all(a <= b for a, b in zip(usage["reward_pace"], usage["reward_pace"][1:]))
    assert (out / "collect_wood.png").stat().st_size > 1000
    assert "| collect_wood | 3 |" in (out / "README.md").read_text()


def test_report_errors_name_the_fix(tiny_run, tmp_path, capsys):
    with pytest.raises(PTGMError, match="picks none"):
        ReportConfig(run_dir=str(tiny_run), method="ppo")
    assert main(["report", "--run-dir", str(tmp_path / "none")]) == 2
    assert "ptgm train" in capsys.readouterr().err


def test_write_report_puts_the_table_and_its_record_side_by_side(tmp_path):
    import json

    import numpy as np

    from ptgm.utils import write_report

    out = tmp_path / "new" / "table.md"
    path = write_report(out, ["# T", "", "| a |", "|---|", "| 1 |"], {"command": "x", "value": np.float32(0.5)})
    assert out.read_text() == "# T\n\n| a |\n|---|\n| 1 |\n"
    assert path == tmp_path / "new" / "table.json" and json.loads(path.read_text()) == {"command": "x", "value": 0.5}
    assert not list(tmp_path.rglob("*.tmp"))
