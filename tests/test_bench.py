"""`ptgm bench`: curve statistics, and a tiny benchmark end to end (runs, reuse, outputs)."""

import csv
import json
import shutil

import numpy as np
import pytest

from ptgm.bench import (
    RECORD_SCHEMA,
    BenchConfig,
    area_under_curve,
    bench,
    pretraining_markdown,
    reference_comparison,
    rolling_score,
    steps_to_threshold,
    subtask_markdown,
)
from ptgm.bench.metrics import aggregate_statistics, late_drop, score_matrices
from ptgm.cli import main
from ptgm.train import TrainConfig
from ptgm.utils import PTGMError, recorded_settings


def bench_one_ptgm_run(tiny_run, tmp_path):
    """A benchmark of one short PTGM run on the tiny pieces (linked from ``tiny_run``): its results folder,
    run directory and settings."""
    out, run = tmp_path / "results", tmp_path / "run"
    config = dict(run_dir=str(run), share_from=str(tiny_run), n_clusters=8, methods=("ptgm",), seeds=1,
                  env_steps=300, eval_episodes=1, window=1, out=str(out))
    bench(BenchConfig(**config))
    return out, run, config


def write_episodes(path, successes, length=10):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_steps", "return", "length", "success"])
        for i, s in enumerate(successes):
            writer.writerow([(i + 1) * length, float(s), length, int(s)])


def test_rolling_score_starts_after_a_full_window(tmp_path):
    write_episodes(tmp_path / "e.csv", [1, 0, 0, 0, 1, 1, 1, 1])
    steps, score = rolling_score(tmp_path / "e.csv", "success", window=4)
    # A lucky first episode alone is no rate: the curve starts at the 4th episode.
    np.testing.assert_array_equal(steps, [40, 50, 60, 70, 80])
    np.testing.assert_allclose(score, [0.25, 0.25, 0.5, 0.75, 1.0])
    assert steps_to_threshold(steps, score, 0.75) == 70
    assert steps_to_threshold(steps, score, 1.01) is None
    write_episodes(tmp_path / "short.csv", [1, 1])
    assert len(rolling_score(tmp_path / "short.csv", "success", window=4)[0]) == 0


def test_late_drop_is_what_a_run_loses_from_its_best_late_window_to_its_end():
    def episodes(scores, every=10_000):
        return [{"env_steps": (i + 1) * every, "return": float(s)} for i, s in enumerate(scores)]

    # 100 episodes of 10k env steps: 3.0 from 300k to 600k, then 2.0 to the end at 1M.
    rising_then_falling = episodes([1.0] * 30 + [3.0] * 30 + [2.0] * 40)
    assert late_drop(rising_then_falling, "return") == pytest.approx(1.0)
    assert late_drop(episodes(np.linspace(0, 3, 100)), "return") == pytest.approx(0.0)  # ends at its best
    assert late_drop(episodes([3.0] * 39), "return") is None  # 390k: no late window to compare with the last
    assert late_drop([], "return") is None


def test_rliable_statistics_take_the_seeds_finished_on_every_task():
    results = [{"task": t, "method": m, "seed": s, "auc": v} for t, m, s, v in (
        ("a", "x", 0, 0.9), ("b", "x", 0, 0.8), ("a", "x", 1, 0.7),  # seed 1 of x lacks task b
        ("a", "y", 0, 0.1), ("b", "y", 0, 0.2), ("a", "y", 1, 0.3), ("b", "y", 1, 0.1))]
    results.append({"task": "b", "method": "x", "seed": 1, "auc": 0.5, "in_progress": True})
    matrices = score_matrices(results, ["a", "b"], "auc")
    np.testing.assert_array_equal(matrices["x"], [[0.9, 0.8]])
    np.testing.assert_array_equal(matrices["y"], [[0.1, 0.2], [0.3, 0.1]])
    stats = aggregate_statistics(matrices, reference="y", reps=200)
    assert stats["x"]["improvement"] == 1.0 and "improvement" not in stats["y"]  # x beats every run of y on both
    assert stats["x"]["iqm"] == pytest.approx(0.85) and stats["x"]["iqm_ci"] == [pytest.approx(0.85)] * 2
    low, high = stats["y"]["iqm_ci"]
    assert 0.1 <= low <= stats["y"]["iqm"] <= high <= 0.3
    assert aggregate_statistics({}, reference="y") == {}


def test_area_under_curve_is_the_mean_score_over_the_budget():
    assert area_under_curve(np.array([50.0, 100.0]), np.array([1.0, 1.0]), 100) == pytest.approx(1.0)
    # 0 until step 50, then a ramp to 1 at step 100: a quarter of the area.
    assert area_under_curve(np.array([50.0, 100.0]), np.array([0.0, 1.0]), 100) == pytest.approx(0.25)
    assert np.isnan(area_under_curve(np.zeros(0), np.zeros(0), 100))


def test_reference_comparison_times_every_method_to_the_reference_final_score():
    def run(method, seed, steps, values, in_progress=False):
        return {"task": "t", "method": method, "seed": seed, "curve": (np.asarray(steps, float), np.asarray(values)),
                "in_progress": in_progress}

    results = [
        run("ppo", 0, [100, 200, 300], [0.2, 0.5, 0.8]),
        run("ppo", 1, [100, 200, 300], [0.1, 0.7, 0.6]),  # final level: mean(0.8, 0.6) = 0.7
        run("ptgm", 0, [10, 20, 30], [0.7, 0.9, 1.0]),
        run("ptgm", 1, [10, 20, 30], [0.5, 0.75, 0.9]),
        run("slow", 0, [100, 200], [0.1, 0.2]),
        run("ptgm", 2, [10], [0.0], in_progress=True),  # unfinished runs do not count
    ]
    level, rows = reference_comparison(results, "t", "ppo")
    assert level == pytest.approx(0.7)
    by = {r["method"]: r for r in rows}
    assert by["ppo"]["steps"] == [300.0, 200.0] and by["ppo"]["ratio"] == pytest.approx(1.0)
    assert by["ptgm"]["steps"] == [10.0, 20.0] and by["ptgm"]["ratio"] == pytest.approx(15 / 250)
    assert by["slow"]["steps"] == [None] and by["slow"]["ratio"] is None
    assert reference_comparison(results, "t", "sac") == (pytest.approx(float("nan"), nan_ok=True), [])
    assert reference_comparison(results + [run("zero", 0, [100], [0.0])], "t", "zero") == (0.0, [])
    assert BenchConfig(domain="kitchen").reference == "spirl" and BenchConfig().reference == "ppo"
    # A sweep of PTGM alone has nothing to time against; a reference it does not run is refused.
    assert BenchConfig(domain="kitchen", methods=("ptgm",)).reference == ""
    with pytest.raises(PTGMError, match="--reference sac is not among the benchmarked methods"):
        BenchConfig(domain="kitchen", methods=("ptgm",), reference="sac")


def test_subtask_table_averages_each_subtask_over_seeds():
    config = BenchConfig(domain="kitchen", methods=("ptgm", "sac"))
    results = [{"task": "mkbl", "method": "ptgm", "eval_subtask_rates": {"kettle": 1.0, "microwave": 0.5}},
               {"task": "mkbl", "method": "ptgm", "eval_subtask_rates": {"kettle": 0.5}},
               # A seed whose evaluation completed nothing is a zero, not a missing value.
               {"task": "mkbl", "method": "ptgm", "eval_subtask_rates": {}},
               {"task": "mkbl", "method": "ptgm", "in_progress": True},
               {"task": "mkbl", "method": "sac", "eval_subtask_rates": {}}]
    lines = subtask_markdown(config, results)
    assert "| task | method | seeds | kettle | microwave |" in lines
    assert "| mkbl | ptgm | 3 | 0.50 | 0.17 |" in lines
    assert "| mkbl | sac | 1 | 0.00 | 0.00 |" in lines
    assert subtask_markdown(BenchConfig(), [{"task": "collect_wood", "method": "ppo"}]) == []


def test_bench_config_checks_names_and_fills_domain_defaults():
    config = BenchConfig(domain="kitchen")
    assert config.tasks == ("mkbl",) and config.methods == ("ptgm", "spirl", "sac") and config.threshold == 3.0
    assert config.n_clusters == 200 and BenchConfig().n_clusters == 64 and BenchConfig(n_clusters=10).n_clusters == 10
    assert config.run_dir == "runs/kitchen" and config.out == "results/kitchen"
    with pytest.raises(PTGMError, match="Unknown method"):
        BenchConfig(methods=("ptgm", "dqn"))
    with pytest.raises(ValueError, match="collect_woood"):
        BenchConfig(tasks=("collect_woood",))
    # `--steps` (the name for the budget) is `--env-steps`.
    import argparse

    from ptgm.cli import _add_dataclass_arguments, _config_from_args

    parser = argparse.ArgumentParser()
    _add_dataclass_arguments(parser, BenchConfig)
    for flag in ("--steps", "--env-steps"):
        assert _config_from_args(BenchConfig, parser.parse_args([flag, "500"])).env_steps == 500


def test_tiny_bench_runs_every_job_and_reuses_them(tiny_run, tmp_path):
    out = tmp_path / "results"
    config = dict(run_dir=str(tiny_run), n_clusters=8, methods=("ptgm", "ppo"), seeds=2, env_steps=300, eval_episodes=2,
                  window=2, out=str(out))
    bench(BenchConfig(**config))
    summary = json.loads((out / "summary.json").read_text())
    assert sorted((r["method"], r["seed"]) for r in summary["runs"]) == [("ppo", 0), ("ppo", 1), ("ptgm", 0), ("ptgm", 1)]
    assert all(r["env_steps"] >= 300 for r in summary["runs"])
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    # (300 flat steps end no 500-step episode, so only PTGM's short goal-reaching episodes are rows here.)
    assert {r["method"] for r in rows} == {"ptgm"}
    table = (out / "summary.md").read_text()
    assert "| collect_wood | ptgm | 2 |" in table and "| collect_wood | ppo | 2 |" in table
    assert (out / "learning_curves_collect_wood.png").stat().st_size > 0
    # Crafter: what the training episodes unlocked, per achievement, and the Crafter score of it.
    assert {"collect_wood"} <= set(";".join(r["achievements"] for r in rows).split(";"))
    assert "## collect_wood: achievements over all training episodes" in table and "| **score (%)** |" in table
    assert (out / "achievements_collect_wood.png").stat().st_size > 0
    # rliable's statistics of the 2 seeds: each method's IQM, and PTGM's probability of beating PPO (the reference).
    aggregate = summary["aggregate"]["final evaluation"]
    assert aggregate["ptgm"]["runs"] == 2 and "improvement" in aggregate["ptgm"] and "improvement" not in aggregate["ppo"]
    low, high = aggregate["ptgm"]["iqm_ci"]
    assert low <= aggregate["ptgm"]["iqm"] <= high
    assert "## Aggregate statistics (rliable)" in table and "| ptgm | 2 | " in table
    # The pieces' pictures are kept once, beside the results folders, and linked from the summary.
    pieces = tmp_path / "pieces" / summary["pretrained"]["fingerprint"]
    for name in ["goals.png", "projection.png", "coverage.md"]:
        assert (pieces / name).stat().st_size > 0
        assert f"](../pieces/{pieces.name}/{name})" in table
    assert summary["schema"] == RECORD_SCHEMA
    # Summarising only starts nothing and keeps every finished run in the table.
    bench(BenchConfig(**{**config, "seeds": 3, "summarize_only": True}))
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 4
    assert not (tiny_run / "rl" / "collect_wood" / "ptgm-seed2").exists()
    # A second call reuses every finished run instead of training again.
    model = tiny_run / "rl" / "collect_wood" / "ptgm-seed0" / "model.zip"
    mtime = model.stat().st_mtime
    assert main(["bench", *sum(([f"--{k.replace('_', '-')}", *(map(str, v) if isinstance(v, tuple) else [str(v)])]
                                for k, v in config.items()), [])]) == 0
    assert model.stat().st_mtime == mtime


def test_a_bench_of_methods_from_scratch_pre_trains_nothing(tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    config = BenchConfig(run_dir=str(run), methods=("ppo",), seeds=1, env_steps=256, eval_episodes=1, window=1,
                         out=str(out))
    bench(config)
    assert sorted(p.name for p in run.iterdir()) == ["logs", "rl"]  # no data, low-level policy, codebook or prior
    assert (run / "rl" / "collect_wood" / "ppo-seed0" / "DONE.json").exists()
    table = (out / "summary.md").read_text()
    assert "pre-trained pieces: none" in table and "| collect_wood | ppo | 1 |" in table
    assert "Goal codebook" not in table and not (tmp_path / "pieces").exists()
    assert json.loads((out / "summary.json").read_text())["pretrained"] is None
    # Summarising needs no pre-training either.
    bench(BenchConfig(**{**vars(config), "summarize_only": True}))
    assert "| collect_wood | ppo | 1 |" in (out / "summary.md").read_text()


def test_missing_runs_from_scratch_train_without_the_pieces_of_recorded_runs(tiny_run, tmp_path, capsys):
    out, run, config = bench_one_ptgm_run(tiny_run, tmp_path)
    pieces = json.loads((out / "summary.json").read_text())["pretrained"]
    # A fresh clone: the PTGM run is recorded in the results, the run directory is gone. Adding a flat
    # baseline trains it alone: nothing is pre-trained (or linked) for it, and the pieces' numbers stay.
    shutil.rmtree(run)
    both = {**config, "methods": ("ptgm", "ppo")}
    bench(BenchConfig(**both))
    assert sorted(p.name for p in run.iterdir()) == ["logs", "rl"]
    assert sorted(p.name for p in (run / "rl" / "collect_wood").iterdir()) == ["ppo-seed0"]
    assert "summary takes the pre-training numbers from" in capsys.readouterr().out
    record = json.loads((out / "summary.json").read_text())
    assert sorted(r["method"] for r in record["runs"]) == ["ppo", "ptgm"] and record["pretrained"] == pieces
    table = (out / "summary.md").read_text()
    assert "| collect_wood | ptgm | 1 |" in table and "| collect_wood | ppo | 1 |" in table
    assert pretraining_markdown(pieces)[0] in table
    # Summarising it again (the flat run in the run directory, PTGM's in the record) needs no pieces either.
    bench(BenchConfig(**{**both, "summarize_only": True}))
    assert (out / "summary.md").read_text() == table


def test_cluster_count_ablation_shares_the_pre_training(tiny_run, tmp_path):
    run = tmp_path / "n4"
    bench(BenchConfig(run_dir=str(run), share_from=str(tiny_run), n_clusters=4, prior_steps=50, methods=("ptgm",),
                      seeds=1, env_steps=200, eval_episodes=1, window=1, k=5, gamma=0.9, anneal_lr=True,
                      ent_coef=0.02, kl_coef=0.05, normalize_advantage=False, out=str(tmp_path / "out")))
    # Data and low-level policy are the tiny run's; the 4-goal codebook and its prior are new.
    assert (run / "data").is_symlink() and (run / "lowlevel").is_symlink()
    assert not (run / "codebook").is_symlink()
    assert json.loads((run / "codebook" / "DONE.json").read_text())["summary"]["n_clusters"] == 4
    done = json.loads((run / "rl" / "collect_wood" / "ptgm-seed0" / "DONE.json").read_text())
    assert done["config"]["k"] == 5 and done["config"]["gamma"] == 0.9 and done["config"]["anneal_lr"]
    assert done["config"]["ent_coef"] == 0.02 and done["config"]["kl_coef"] == 0.05
    assert done["config"]["normalize_advantage"] is False
    # Another goal count in a run directory that has a codebook is refused, not recorded under the wrong count.
    with pytest.raises(PTGMError, match="holds a codebook of 4 goals, not the 6 asked for"):
        bench(BenchConfig(run_dir=str(run), n_clusters=6, methods=("ptgm",), seeds=1, env_steps=200,
                          out=str(tmp_path / "six")))
    # PTGM alone: no method to time it against, so no such table.
    assert "Env steps to reach" not in (tmp_path / "out" / "summary.md").read_text()
    with pytest.raises(PTGMError, match="no finished low-level policy"):
        bench(BenchConfig(run_dir=str(tmp_path / "x"), share_from=str(tmp_path / "nothing"), out=str(tmp_path / "y")))


def test_summary_shows_runs_in_progress(tiny_run, tmp_path):
    run = tiny_run / "rl" / "collect_wood" / "ppo-seed9"
    run.mkdir(parents=True)
    (run / "checkpoint.json").write_text(json.dumps({"env_steps": 120}))
    write_episodes(run / "episodes.csv", [0, 1, 1], length=40)
    out = tmp_path / "out"
    bench(BenchConfig(run_dir=str(tiny_run), n_clusters=8, methods=("ppo",), seeds=10, window=2, summarize_only=True,
                      out=str(out)))
    runs = json.loads((out / "summary.json").read_text())["runs"]
    partial = [r for r in runs if r["seed"] == 9]
    assert len(partial) == 1 and partial[0]["in_progress"] and partial[0]["env_steps"] == 120
    assert "in progress" in (out / "summary.md").read_text()


def test_settings_added_after_results_were_recorded_keep_the_defaults_those_results_ran_with():
    # results/*/summary.json and runs' DONE.json files made before these settings existed lack them; they are
    # read back with today's defaults (recorded_settings), so changing one of these would misread them.
    ran_with = {"gamma": None, "anneal_lr": False, "ent_coef": 0.01, "kl_coef": 0.01, "normalize_advantage": True,
                "play": None, "tuned": None}
    assert {name: getattr(BenchConfig(), name) for name in ran_with} == ran_with
    assert TrainConfig().normalize_advantage is True
    old_record = {"domain": "kitchen", "env_steps": 300}
    assert {name: recorded_settings(old_record, BenchConfig)[name] for name in ran_with} == ran_with
    assert recorded_settings(old_record, BenchConfig)["env_steps"] == 300


def test_runs_recorded_in_the_results_count_when_their_directories_are_gone(tiny_run, tmp_path, capsys):
    out, run, config = bench_one_ptgm_run(tiny_run, tmp_path)
    first = json.loads((out / "summary.json").read_text())["runs"]
    assert len(first) == 1 and first[0]["config"]["method"] == "ptgm"
    curves = (out / "curves.csv").read_text()
    assert curves.count("\n") > 1  # episodes recorded
    # A fresh clone: the results are there, the run directory's RL runs are not.
    shutil.rmtree(run / "rl")
    bench(BenchConfig(**config))
    assert not (run / "rl").exists()  # nothing trained again
    again = json.loads((out / "summary.json").read_text())["runs"]
    assert [(r["seed"], r["eval_mean_return"], r["auc"], r["episodes"]) for r in again] == [
        (r["seed"], r["eval_mean_return"], r["auc"], r["episodes"]) for r in first]
    assert isinstance(first[0]["episodes"], int)  # the run's episode count, kept in the record
    assert (out / "curves.csv").read_text() == curves
    # Without the pre-trained pieces either, the summary is written again from the record alone.
    table = (out / "summary.md").read_text()
    shutil.rmtree(run)
    bench(BenchConfig(**config))
    assert not run.exists()  # nothing pre-trained (or linked) again
    assert (out / "summary.md").read_text() == table
    assert (out / "curves.csv").read_text() == curves
    # A benchmark of another method keeps that record (out of its tables).
    bench(BenchConfig(**{**config, "methods": ("ppo",), "summarize_only": True}))
    assert [r["method"] for r in json.loads((out / "summary.json").read_text())["runs"]] == ["ptgm"]
    assert "| ptgm |" not in (out / "summary.md").read_text()
    # A benchmark with another budget must not overwrite that record.
    with pytest.raises(PTGMError, match=f"env_steps=300.*--out {tmp_path / 'run'}"):
        bench(BenchConfig(**{**config, "env_steps": 400, "summarize_only": True}))
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    # A record made before the bench had --gamma (--ent-coef, --kl-coef) was made with each method's own
    # discount (gamma unset) and the default entropy bonus and α.
    record = json.loads((out / "summary.json").read_text())
    del record["config"]["gamma"], record["config"]["ent_coef"], record["config"]["kl_coef"]
    (out / "summary.json").write_text(json.dumps(record))
    bench(BenchConfig(**{**config, "summarize_only": True}))
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    with pytest.raises(PTGMError, match="gamma=None"):
        bench(BenchConfig(**{**config, "gamma": 0.95, "summarize_only": True}))
    # A run recorded before a training setting existed ran with that setting's default, and counts.
    record = json.loads((out / "summary.json").read_text())
    del record["config"]["normalize_advantage"], record["runs"][0]["config"]["normalize_advantage"]
    (out / "summary.json").write_text(json.dumps(record))
    bench(BenchConfig(**{**config, "summarize_only": True}))
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    # One recorded before results kept training settings counts on the benchmark's, and says so once.
    run_config = record["runs"][0].pop("config")
    (out / "summary.json").write_text(json.dumps(record))
    capsys.readouterr()
    bench(BenchConfig(**{**config, "summarize_only": True}))
    printed = capsys.readouterr().out
    assert printed.count("no recorded training settings") == 1 and "1 run(s) in" in printed  # one line for all
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    record["runs"][0]["config"] = run_config
    (out / "summary.json").write_text(json.dumps(record))
    # A run whose environments were stepped in subprocesses counts; one trained under other settings does not.
    record = json.loads((out / "summary.json").read_text())
    record["runs"][0]["config"]["subproc"] = True
    (out / "summary.json").write_text(json.dumps(record))
    bench(BenchConfig(**{**config, "summarize_only": True}))
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    record["runs"][0]["config"]["ent_coef"] = 0.5
    (out / "summary.json").write_text(json.dumps(record))
    bench(BenchConfig(**{**config, "summarize_only": True}))
    assert json.loads((out / "summary.json").read_text())["runs"] == []
    record_data = {k: v for k, v in json.loads((out / "summary.json").read_text())["pretrained"]["data"].items()
                   if k in ("episodes", "transitions")}
    assert set(record_data) == {"episodes", "transitions"}
    # A record without the pre-training numbers, without the run directory: its summary says they are not
    # recorded (the Markdown is never read back), and nothing is trained (it once generated a dataset).
    record = json.loads((out / "summary.json").read_text())
    del record["pretrained"]
    (out / "summary.json").write_text(json.dumps(record))
    bench(BenchConfig(**{**config, "summarize_only": True}))
    assert not run.exists() and "made before it kept them" in (out / "summary.md").read_text()
    # With no record and no pieces, summarising names the missing stages.
    with pytest.raises(PTGMError, match="--summarize-only trains nothing.*data, lowlevel, prior"):
        bench(BenchConfig(**{**config, "out": str(tmp_path / "elsewhere"), "summarize_only": True}))
    assert not run.exists()



def test_runs_recorded_from_other_pretrained_pieces_are_not_mixed_in(tiny_run, tmp_path, capsys):
    out = tmp_path / "results"
    config = dict(run_dir=str(tmp_path / "run"), share_from=str(tiny_run), n_clusters=8, methods=("ptgm",), seeds=1,
                  env_steps=200, eval_episodes=1, window=1, out=str(out))
    bench(BenchConfig(**config))
    record = json.loads((out / "summary.json").read_text())
    codebook = json.loads((tiny_run / "codebook" / "DONE.json").read_text())["summary"]
    assert record["pretrained"]["fingerprint"] == codebook["fingerprint"]  # the pieces' dataset, recorded
    assert set(pretraining_markdown(record["pretrained"])) <= set((out / "summary.md").read_text().splitlines())
    shutil.rmtree(tmp_path / "run" / "rl")  # the run directory keeps its pieces, not the recorded runs
    more = BenchConfig(**{**config, "seeds": 2})  # seed 1 is trained with the run directory's pieces
    for change in ("fingerprint", "episodes"):  # another dataset; records from before the fingerprint: by its size
        other = json.loads(json.dumps(record))
        if change == "fingerprint":
            other["pretrained"]["fingerprint"] = "another-dataset"
        else:
            other["pretrained"]["fingerprint"] = None
            other["pretrained"]["data"]["episodes"] += 1
        (out / "summary.json").write_text(json.dumps(other))
        with pytest.raises(PTGMError, match="other pre-trained pieces.*own --out"):
            bench(more)
        assert json.loads((out / "summary.json").read_text()) == other  # the record is left as it was
        assert not (tmp_path / "run" / "rl").exists()  # and nothing was trained beside it
    # One with no such numbers, summarised alone: its summary says they are not recorded, rather than
    # giving those of the pieces the run directory holds now (which may be others).
    del other["pretrained"]
    (out / "summary.json").write_text(json.dumps(other))
    capsys.readouterr()
    bench(BenchConfig(**config))  # nothing to train, so not even without --summarize-only
    assert "which has none" in capsys.readouterr().out
    table = (out / "summary.md").read_text()
    assert "made before it kept them" in table and "transitions of scripted play" not in table
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 1
    assert not (tmp_path / "run" / "rl").exists()
    # Trained beside new runs, such a record cannot be checked against the pieces: that is said, and it counts.
    bench(more)
    assert "cannot be checked" in capsys.readouterr().out
    assert [run["seed"] for run in json.loads((out / "summary.json").read_text())["runs"]] == [0, 1]


def test_compare_sets_the_sweeps_side_by_side(tiny_run, tmp_path):
    from ptgm.compare import CompareConfig, compare

    common = dict(share_from=str(tiny_run), methods=("ptgm",), seeds=1, env_steps=200, eval_episodes=1, window=1,
                  prior_steps=50)
    folders = []
    for name, setting in (("ref", dict(n_clusters=8)), ("n4", dict(n_clusters=4)), ("k5", dict(n_clusters=8, k=5)),
                          ("g9", dict(n_clusters=8, gamma=0.9))):
        bench(BenchConfig(run_dir=str(tmp_path / "runs" / name), out=str(tmp_path / name), **common, **setting))
        folders.append(str(tmp_path / name))
    result = compare(CompareConfig(results=tuple(folders), out=str(tmp_path / "sweeps")))
    assert result["settings"] == ["n_clusters", "k", "gamma"]
    # Each sweep holds the reference and the folder that differs from it in that setting alone.
    assert sorted(result["pictures"]) == ["sweep_gamma.png", "sweep_k.png", "sweep_n_clusters.png"]
    assert all((tmp_path / "sweeps" / p).stat().st_size > 0 for p in result["pictures"])
    table = (tmp_path / "sweeps" / "comparison.md").read_text()
    assert table.count("| collect_wood | ptgm | 1 |") == 4 and f"| {folders[1]} | 4 | 10 | 0.95 |" in table  # the discount the runs trained with
    # The command written at the top gives this comparison again.
    assert f"Command: `ptgm compare --results {' '.join(folders)} --out {tmp_path / 'sweeps'}`" in table
    # One folder alone: no swept setting, no plot, and the table's rows still line up with its header.
    alone = compare(CompareConfig(results=(folders[0],), out=str(tmp_path / "alone")))
    assert alone["settings"] == [] and alone["pictures"] == []
    for text in (table, (tmp_path / "alone" / "comparison.md").read_text()):
        assert len({line.count("|") for line in text.splitlines() if line.startswith("|")}) == 1
    with pytest.raises(PTGMError, match="has no summary.json.*ptgm bench"):
        compare(CompareConfig(results=(folders[0], str(tmp_path / "missing"))))
    (tmp_path / "n4" / "summary.json").write_text("{")
    with pytest.raises(PTGMError, match="not valid JSON"):
        compare(CompareConfig(results=tuple(folders)))


def test_a_record_of_another_version_is_not_mixed_in(tiny_run, tmp_path):
    out = tmp_path / "results"
    config = dict(run_dir=str(tmp_path / "run"), share_from=str(tiny_run), n_clusters=8, methods=("ptgm",), seeds=1,
                  env_steps=200, eval_episodes=1, window=1, out=str(out))
    bench(BenchConfig(**config))
    record = json.loads((out / "summary.json").read_text())
    del record["schema"]  # as older code wrote it
    (out / "summary.json").write_text(json.dumps(record))
    with pytest.raises(PTGMError, match="another version of ptgm .record schema 1.*own --out"):
        bench(BenchConfig(**{**config, "summarize_only": True}))
    assert "schema" not in json.loads((out / "summary.json").read_text())  # left as it was


def test_late_drop_script_reads_any_recorded_benchmark(tmp_path, monkeypatch, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "late_drop.py"
    spec = importlib.util.spec_from_file_location("late_drop_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"config": {"domain": "kitchen"}, "runs": [
        {"task": "mkbl", "method": "ptgm", "seed": 0}, {"task": "mkbl", "method": "sac", "seed": 0, "in_progress": True}]}))
    with open(folder / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "method", "seed", "env_steps", "return", "length", "success"])
        for i in range(100):  # 3 subtasks from 300k to 600k, then 2 to the end at 1M
            writer.writerow(["mkbl", "ptgm", 0, (i + 1) * 10_000, 3.0 if 30 <= i < 60 else 2.0, 280, 0])
            writer.writerow(["mkbl", "sac", 0, (i + 1) * 10_000, 1.0, 280, 0])
    out = tmp_path / "late_drop.md"
    monkeypatch.setattr(sys, "argv", ["late_drop.py", str(folder), "--out", str(out)])
    assert script.main() == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert [(r["method"], r["late_drop"]) for r in record["runs"]] == [("ptgm", pytest.approx(1.0))]  # sac unfinished
    assert "| mkbl | ptgm | 0 | 1000000 | 1.00 |" in out.read_text()
    monkeypatch.setattr(sys, "argv", ["late_drop.py", str(tmp_path / "nothing")])
    assert script.main() == 2 and "has no summary.json" in capsys.readouterr().err


def test_aggregate_table_leaves_out_the_improvement_columns_without_a_reference():
    from ptgm.bench.markdown import aggregate_markdown

    stats = {what: {"ptgm": {"runs": 1, "iqm": 2.0, "iqm_ci": [2.0, 2.0]}} for what in ("final evaluation", "training AUC")}
    alone = "\n".join(aggregate_markdown(BenchConfig(domain="kitchen", methods=("ptgm",)), stats, "return"))
    assert "| ptgm | 1 | 2.00 [2.00, 2.00] | 2.00 [2.00, 2.00] |" in alone and "P(>" not in alone
    both = {what: {**entry, "sac": {"runs": 1, "iqm": 1.0, "iqm_ci": [1.0, 1.0]}} for what, entry in stats.items()}
    for entry in both.values():
        entry["ptgm"] = {**entry["ptgm"], "improvement": 1.0, "improvement_ci": [1.0, 1.0]}
    table = "\n".join(aggregate_markdown(BenchConfig(domain="kitchen", methods=("ptgm", "sac")), both, "return"))
    assert "P(> sac), final evaluation" in table and "| ptgm | 1 | 2.00 [2.00, 2.00] | 2.00 [2.00, 2.00] | 1.00 [1.00, 1.00] |" in table
    assert aggregate_markdown(BenchConfig(domain="kitchen", methods=("ptgm",)), {"final evaluation": {}, "training AUC": {}}, "return") == []
