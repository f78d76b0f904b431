import json

import pytest

from ptgm.evaluate import EvaluateConfig, evaluate, trained_config
from ptgm.train import TrainConfig, run_directory
from ptgm.utils import PTGMError, config_dict


def _saved_run(tmp_path, **settings) -> str:
    run = str(tmp_path / "run")
    config = TrainConfig(run_dir=run, **settings)
    out = run_directory(config)
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config_dict(config)))
    return run


def test_evaluation_uses_the_runs_own_low_level_settings(tmp_path):
    run = _saved_run(tmp_path, k=4, deterministic_low_level=True, compose_goals=False)
    settings = trained_config(EvaluateConfig(run_dir=run))
    assert (settings.k, settings.deterministic_low_level, settings.compose_goals) == (4, True, False)
    overridden = trained_config(EvaluateConfig(run_dir=run, k=7, low_level="stochastic"))
    assert (overridden.k, overridden.deterministic_low_level) == (7, False)


def test_runs_saved_before_goal_composition_are_evaluated_without_it(tmp_path):
    run = _saved_run(tmp_path)
    path = tmp_path / "run" / "rl" / "collect_wood" / "ptgm-seed0" / "config.json"
    saved = json.loads(path.read_text())
    del saved["compose_goals"]
    path.write_text(json.dumps(saved))
    assert trained_config(EvaluateConfig(run_dir=run)).compose_goals is False


def test_evaluate_errors_name_the_problem(tmp_path):
    with pytest.raises(PTGMError, match="low-level"):
        evaluate(EvaluateConfig(run_dir=str(tmp_path), low_level="greedy"))
    with pytest.raises(PTGMError, match="No trained policy"):
        evaluate(EvaluateConfig(run_dir=str(tmp_path)))
