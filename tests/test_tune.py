"""`ptgm tune`: equal tuning grids, the rule's choice, and `ptgm bench --tuned` training with it."""

import json

import numpy as np
import pytest

from ptgm.bench import BenchConfig, bench
from ptgm.bench.tune import TuneConfig, alternatives_grid, parse_grid, tune
from ptgm.cli import main
from ptgm.methods import get_method, method_names
from ptgm.utils import PTGMError


def test_alternatives_grid_tries_every_combination_defaults_first():
    assert alternatives_grid((("learning_rate", 1e-4), ("kl_coef", 0.1))) == [
        {}, {"learning_rate": 1e-4}, {"kl_coef": 0.1}, {"learning_rate": 1e-4, "kl_coef": 0.1}]
    assert alternatives_grid(()) == [{}]


def test_every_method_gets_the_same_tuning_budget():
    sizes = {name: len(alternatives_grid(get_method(name).tuning_alternatives)) for name in method_names()}
    assert set(sizes.values()) == {4}, sizes


def test_grid_entries_are_typed_and_bad_ones_are_named():
    assert parse_grid(("learning_rate=3e-4,1e-4", "normalize-advantage=true,false")) == [
        {"learning_rate": 3e-4, "normalize_advantage": True}, {"learning_rate": 3e-4, "normalize_advantage": False},
        {"learning_rate": 1e-4, "normalize_advantage": True}, {"learning_rate": 1e-4, "normalize_advantage": False}]
    assert parse_grid(("n_epochs=2",)) == [{"n_epochs": 2}]
    for entry, message in (("learning_rate", "is not FIELD=V1,V2"), ("seed=1,2", "not a `ptgm train` setting"),
                           ("hidden=64", "a list setting"), ("n_epochs=two", "'two' is not a int"),
                           ("anneal_lr=maybe", "is not true or false")):
        with pytest.raises(PTGMError, match=message):
            parse_grid((entry,))
    with pytest.raises(PTGMError, match="names n_epochs twice"):
        parse_grid(("n_epochs=1", "n_epochs=2"))


def test_unequal_grids_and_bad_values_fail_before_any_run(tiny_run, tmp_path, monkeypatch):
    common = dict(run_dir=str(tiny_run), methods=("ptgm", "ppo"), n_clusters=8, out=str(tmp_path / "t"))
    monkeypatch.setattr(get_method("ppo"), "tuning_alternatives", (("learning_rate", 1e-4),))
    with pytest.raises(PTGMError, match=r"grids differ in size \(ptgm 4, ppo 2\)"):
        TuneConfig(**common)
    with pytest.raises(PTGMError, match="learning-rate must be"):
        TuneConfig(**common, grid=("learning_rate=3e-4,-1",))
    with pytest.raises(PTGMError, match="leave --tuned out"):
        TuneConfig(**common, tuned="x.json")
    assert main(["tune", "--run-dir", str(tiny_run), "--grid", "hidden=64"]) != 0


def test_tune_chooses_by_the_rule_and_bench_trains_with_the_choice(tiny_run, tmp_path):
    out = tmp_path / "tuning"
    config = dict(run_dir=str(tmp_path / "run"), share_from=str(tiny_run), n_clusters=8, methods=("ppo",),
                  grid=("learning_rate=3e-4,1e-3",), env_steps=300, window=1, eval_episodes=1, out=str(out))
    record = tune(TuneConfig(**config))
    for method in ("ppo",):
        entry = record["methods"][method]
        assert [c["settings"] for c in entry["configurations"]] == [{"learning_rate": 3e-4}, {"learning_rate": 1e-3}]
        scores = [c["score"] for c in entry["configurations"]]
        assert all(c["runs"][0]["finished"] and c["runs"][0]["seed"] == 100 for c in entry["configurations"])
        assert entry["chosen_index"] == int(np.argmax(scores))
        assert entry["chosen"] == entry["configurations"][entry["chosen_index"]]["settings"]
    runs = tmp_path / "run" / "rl" / "collect_wood"
    assert sorted(p.name for p in runs.iterdir()) == ["ppo-tune0-seed100", "ppo-tune1-seed100"]
    table = (out / "tuning.md").read_text()
    assert table.count("| ppo |") == 2 and table.count("✓") == 1 and (out / "tuning_curves.png").exists()
    # A rerun reuses the finished runs.
    done = {p: p.stat().st_mtime_ns for p in runs.glob("*/DONE.json")}
    assert tune(TuneConfig(**config)) == record
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/DONE.json")} == done

    tuned = str(out / "tuning.json")
    bench_config = dict(run_dir=str(tmp_path / "run"), n_clusters=8, seeds=1, env_steps=300, eval_episodes=1,
                        window=1, out=str(tmp_path / "results"), tuned=tuned)
    bench(BenchConfig(methods=("ppo",), **bench_config))
    run = json.loads((runs / "ppo-seed0" / "DONE.json").read_text())
    assert run["config"]["learning_rate"] == record["methods"]["ppo"]["chosen"]["learning_rate"]
    assert f"Settings from `{tuned}`" in (tmp_path / "results" / "summary.md").read_text()

    with pytest.raises(PTGMError, match="no chosen settings for bc-ppo"):
        BenchConfig(methods=("ppo", "bc-ppo"), **bench_config)
    with pytest.raises(PTGMError, match=r"tuned on seed\(s\) 100, which this benchmark reports"):
        BenchConfig(methods=("ppo",), **{**bench_config, "seeds": 101})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PTGMError, match="not a tuning.json"):
        BenchConfig(methods=("ppo",), **{**bench_config, "tuned": str(tmp_path / "bad.json")})


def test_a_tuning_carries_on_from_its_results_folder(tiny_run, tmp_path):
    """A fresh clone has the results folder and not the run directory: recorded runs count while their settings and
    pieces are those of now, and the others are trained (again)."""
    import shutil

    out = tmp_path / "tuning"
    config = dict(run_dir=str(tmp_path / "run"), share_from=str(tiny_run), n_clusters=8, methods=("ptgm",),
                  grid=("learning_rate=3e-4,1e-3",), env_steps=300, window=1, eval_episodes=1, out=str(out))
    runs = tmp_path / "run" / "rl" / "collect_wood"
    # Before any run: every run is "not started" in the table, and no method is chosen.
    tune(TuneConfig(**config, summarize_only=True))
    assert (out / "tuning.md").read_text().count("| not started | not started |") == 2
    record = tune(TuneConfig(**config))
    assert "not started" not in (out / "tuning.md").read_text()
    header, *episodes = (out / "tuning_episodes.csv").read_text().splitlines()
    assert header.startswith("task,method,configuration,seed,env_steps") and episodes

    # The run directory's runs are gone: the record's count, and nothing is trained.
    shutil.rmtree(runs)
    assert tune(TuneConfig(**config)) == record
    assert not runs.exists() or not any(runs.iterdir())
    assert tune(TuneConfig(**config, summarize_only=True)) == record

    # A recorded run trained on other pieces (rebuilt since) is trained again; the other still counts.
    tampered = json.loads((out / "tuning.json").read_text())
    tampered["methods"]["ptgm"]["configurations"][1]["runs"][0]["pieces"] = "rebuilt"
    (out / "tuning.json").write_text(json.dumps(tampered))
    again = tune(TuneConfig(**config))
    assert sorted(p.name for p in runs.iterdir()) == ["ptgm-tune1-seed100"]
    assert again["methods"]["ptgm"]["configurations"][0] == record["methods"]["ptgm"]["configurations"][0]

    # Other training settings (here the final evaluation) make every recorded run another run.
    shutil.rmtree(runs)
    other = tune(TuneConfig(**{**config, "eval_episodes": 2}, summarize_only=True))
    assert all(not c["runs"][0]["finished"] for c in other["methods"]["ptgm"]["configurations"])
