"""The whole pipeline through the command line on the tiny run, plus reuse, resume and error paths."""

import json
import shutil
import time

import pytest

from ptgm.cli import main
from ptgm.lowlevel.train import PretrainConfig, pretrain
from ptgm.train import TrainConfig, train
from ptgm.utils import PTGMError


def test_whole_pipeline_from_the_command_line(tmp_path):
    start = time.perf_counter()
    run = str(tmp_path / "run")
    assert main(["generate", "--run-dir", run, "--transitions", "2500", "--shard-transitions", "1250",
                 "--workers", "2"]) == 0
    coverage = json.loads((tmp_path / "run" / "data" / "coverage.json").read_text())
    assert coverage["transitions"] >= 2500 and coverage["coverage"]["collect_wood"] > 0
    assert main(["pretrain", "--run-dir", run, "--steps", "100", "--eval-every", "50", "--hidden", "64", "64",
                 "--goal-trials", "3"]) == 0
    assert main(["cluster", "--run-dir", run, "--n-clusters", "6", "--n-init", "1"]) == 0
    assert (tmp_path / "run" / "codebook" / "goals.png").stat().st_size > 1000
    assert (tmp_path / "run" / "codebook" / "projection.png").exists()
    assert main(["prior", "--run-dir", run, "--steps", "100", "--eval-every", "50", "--hidden", "32", "32"]) == 0
    for method in ["ptgm", "ptgm-no-prior", "ppo"]:
        assert main(["train", "--run-dir", run, "--method", method, "--env-steps", "600", "--n-envs", "2",
                     "--hidden", "32", "32", "--n-steps", "16", "--eval-episodes", "2"]) == 0
        out = tmp_path / "run" / "rl" / "collect_wood" / f"{method}-seed0"
        summary = json.loads((out / "DONE.json").read_text())["summary"]
        assert summary["env_steps"] >= 600 and (out / "episodes.csv").exists() and (out / "model.zip").exists()
        assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert main(["evaluate", "--run-dir", run, "--episodes", "2"]) == 0
    for stage in ["data", "lowlevel", "codebook", "prior"]:
        assert (tmp_path / "run" / stage / "config.json").exists()
    assert (tmp_path / "run" / "lowlevel" / "metrics.csv").read_text().count("\n") >= 3
    assert time.perf_counter() - start < 180


def test_finished_stage_is_reused_not_redone(tiny_run):
    done = (tiny_run / "lowlevel" / "DONE.json").read_text()
    policy_mtime = (tiny_run / "lowlevel" / "policy.pt").stat().st_mtime
    pretrain(PretrainConfig(run_dir=str(tiny_run), steps=150, eval_every=50, batch_size=128, hidden=(64, 64),
                            goal_trials=3))
    assert (tiny_run / "lowlevel" / "policy.pt").stat().st_mtime == policy_mtime
    assert (tiny_run / "lowlevel" / "DONE.json").read_text() == done


def test_play_generated_again_from_the_same_seeds_keeps_the_pieces_built_on_it(tmp_path, capsys):
    run = str(tmp_path / "run")
    play = ["generate", "--run-dir", run, "--transitions", "600", "--shard-transitions", "300", "--workers", "1"]
    low = ["pretrain", "--run-dir", run, "--steps", "20", "--eval-every", "10", "--hidden", "16", "16",
           "--goal-trials", "1"]
    assert main(play) == 0 and main(low) == 0
    policy = tmp_path / "run" / "lowlevel" / "policy.pt"
    made = policy.stat().st_mtime_ns
    assert main([*play, "--force"]) == 0 and main(low) == 0  # the same play: the policy fits it, reused
    assert policy.stat().st_mtime_ns == made and "already finished" in capsys.readouterr().out
    assert main([*play, "--force", "--seed", "1"]) == 0  # other play: the policy is refused, with the fix
    assert main(low) == 2
    assert "has since been rebuilt" in capsys.readouterr().err and policy.stat().st_mtime_ns == made


def test_pieces_copied_to_another_run_directory_fit_the_same_play_generated_there(tmp_path, capsys, monkeypatch):
    """The data stage's record names its dataset's path: a fresh clone that regenerates the same play in a run
    directory written otherwise (relative, elsewhere) and copies the committed pieces in keeps them."""
    from ptgm.utils import stage_fingerprint

    monkeypatch.chdir(tmp_path)
    play = ["generate", "--transitions", "600", "--shard-transitions", "300", "--workers", "1"]
    low = ["pretrain", "--steps", "20", "--eval-every", "10", "--hidden", "16", "16", "--goal-trials", "1"]
    first = str(tmp_path / "first")  # absolute
    assert main([*play, "--run-dir", first]) == 0 and main([*low, "--run-dir", first]) == 0
    shutil.copytree(tmp_path / "first" / "lowlevel", tmp_path / "second" / "lowlevel")
    assert main([*play, "--run-dir", "second"]) == 0  # relative, elsewhere: the same play
    assert stage_fingerprint(tmp_path / "second" / "data") == stage_fingerprint(tmp_path / "first" / "data")
    assert stage_fingerprint(tmp_path / "second" / "data", located=True) != stage_fingerprint(
        tmp_path / "first" / "data", located=True)
    capsys.readouterr()
    assert main([*low, "--run-dir", "second"]) == 0 and "already finished" in capsys.readouterr().out
    # Pieces recorded by earlier versions (the located fingerprint) still fit where they were made.
    marker = tmp_path / "first" / "lowlevel" / "DONE.json"
    done = json.loads(marker.read_text())
    done["inputs"]["data"] = stage_fingerprint(tmp_path / "first" / "data", located=True)
    marker.write_text(json.dumps(done))
    assert main([*low, "--run-dir", first]) == 0 and "already finished" in capsys.readouterr().out
    done["inputs"]["data"] = "0" * 24  # and other play is still refused
    marker.write_text(json.dumps(done))
    assert main([*low, "--run-dir", first]) == 2 and "has since been rebuilt" in capsys.readouterr().err


def test_a_stage_finished_before_a_setting_existed_is_reused_quietly(tmp_path, capsys):
    from ptgm.utils import config_dict, mark_stage_done, prepare_stage

    config = TrainConfig(run_dir=str(tmp_path), task="collect_wood")
    old = {k: v for k, v in config_dict(config).items() if k != "normalize_advantage"}
    mark_stage_done(tmp_path, config, {"score": 1.0})
    done = json.loads((tmp_path / "DONE.json").read_text())
    (tmp_path / "DONE.json").write_text(json.dumps({**done, "config": old}))
    assert prepare_stage(tmp_path, config, force=False, resume=False, name="train") == {"score": 1.0}
    assert "already finished" in capsys.readouterr().out
    # A setting that did change is named.
    config.normalize_advantage = False
    prepare_stage(tmp_path, config, force=False, resume=False, name="train")
    assert "differ in normalize_advantage" in capsys.readouterr().out
    # A stage recorded in another run directory (moved, or linked by --share-from) is the same stage.
    config.normalize_advantage = True
    (tmp_path / "DONE.json").write_text(json.dumps({**done, "config": {**old, "run_dir": "runs/elsewhere"}}))
    prepare_stage(tmp_path, config, force=False, resume=False, name="train")
    assert "already finished" in capsys.readouterr().out


def test_interrupted_pretraining_resumes_from_its_checkpoint(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "data", run / "data")
    config = dict(run_dir=str(run), steps=60, eval_every=20, checkpoint_every=20, batch_size=64, hidden=(32,),
                  goal_trials=2)
    import ptgm.training as training
    real_check = training.check_finite

    def nan_at_step_50(value, what, step, *limit):  # after the checkpoints of steps 20 and 40
        real_check(float("nan") if step == 50 else value, what, step, *limit)

    monkeypatch.setattr(training, "check_finite", nan_at_step_50)
    with pytest.raises(PTGMError, match="diverged"):
        pretrain(PretrainConfig(**config))
    monkeypatch.setattr(training, "check_finite", real_check)
    assert (run / "lowlevel" / "checkpoint.pt").exists()
    with pytest.raises(PTGMError, match="--resume"):
        pretrain(PretrainConfig(**config))
    summary = pretrain(PretrainConfig(**config, resume=True))
    assert not (run / "lowlevel" / "checkpoint.pt").exists()
    steps = [int(line.split(",")[0]) for line in (run / "lowlevel" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [20, 40, 60]  # 20 and 40 from the first attempt, 60 after resuming at 40
    assert "val_action_accuracy" in summary


def test_interrupted_rl_resumes(tiny_run, tmp_path):
    run = tmp_path / "run"
    for stage in ["data", "lowlevel", "codebook", "prior"]:
        shutil.copytree(tiny_run / stage, run / stage)
    base = dict(run_dir=str(run), env_steps=300, checkpoint_every=100, n_envs=1, hidden=(32, 32), n_steps=8,
                eval_episodes=1)
    out = run / "rl" / "collect_wood" / "ptgm-seed0"

    class Stop(Exception):
        pass

    import ptgm.train as hrl_train
    original = hrl_train.EpisodeRecorder.save_checkpoint

    def save_then_stop(self):
        original(self)
        raise Stop

    hrl_train.EpisodeRecorder.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            train(TrainConfig(**base))
    finally:
        hrl_train.EpisodeRecorder.save_checkpoint = original
    saved = json.loads((out / "checkpoint.json").read_text())["env_steps"]
    assert saved >= 100 and (out / "checkpoint.zip").exists()
    summary = train(TrainConfig(**base, resume=True))
    assert summary["env_steps"] >= 300
    assert not (out / "checkpoint.zip").exists()


def test_user_errors_exit_with_a_message(tmp_path, capsys):
    assert main(["pretrain", "--run-dir", str(tmp_path / "empty")]) == 2
    assert "ptgm generate" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path), "--task", "collect_woood"]) == 2
    assert "Unknown Crafter task" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # a name outside the listed choices: argparse's one-line error
        main(["train", "--run-dir", str(tmp_path), "--method", "dqn"])
    assert exit_.value.code == 2 and "invalid choice: 'dqn'" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "nothing")]) == 2
    assert "ptgm pretrain" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "generate", "pretrain", "cluster", "prior", "train", "evaluate", "bench", "report"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--run-dir" in capsys.readouterr().out


def test_low_level_settings_follow_the_domain_unless_given():
    assert (PretrainConfig(domain="crafter").k_max, PretrainConfig(domain="kitchen").k_max) == (20, 60)
    assert PretrainConfig(domain="kitchen", k_max=30).k_max == 30
    assert TrainConfig(domain="crafter").deterministic_low_level is False
    assert TrainConfig(domain="kitchen").deterministic_low_level is True
    assert TrainConfig(domain="kitchen", deterministic_low_level=False).deterministic_low_level is False
    # PPO's KL early stop: the domain's for the PTGM methods, off for flat PPO, as given when given.
    assert TrainConfig(domain="crafter").target_kl == 0.0
    assert TrainConfig(domain="kitchen").target_kl == 0.02
    assert TrainConfig(domain="kitchen", method="ptgm-no-prior").target_kl == 0.02
    assert TrainConfig(domain="kitchen", method="ppo").target_kl == 0.0
    assert TrainConfig(domain="kitchen", target_kl=0.0).target_kl == 0.0


@pytest.mark.parametrize("flags, expected", [([], None), (["--deterministic-low-level"], True),
                                             (["--no-deterministic-low-level"], False)])
def test_optional_switches_stay_unset_until_given(flags, expected):
    import argparse

    from ptgm.cli import _add_dataclass_arguments

    parser = argparse.ArgumentParser()
    _add_dataclass_arguments(parser, TrainConfig)
    assert parser.parse_args(flags).deterministic_low_level is expected


@pytest.mark.parametrize("config", [
    TrainConfig(),
    TrainConfig(run_dir="runs/kitchen", domain="kitchen", task="mkbl", method="sac", seed=2, env_steps=1_000_000,
                eval_episodes=100, resume=True),
    TrainConfig(domain="kitchen", target_kl=0.0, deterministic_low_level=False, hidden=(64, 32), kl_coef=0.25,
                compose_goals=False),
])
def test_command_line_of_a_config_parses_back_to_it(config):
    """`ptgm bench` launches `ptgm train` with these flags; a setting lost on the way would train something else."""
    import argparse

    from ptgm.cli import _add_dataclass_arguments, _config_from_args, config_arguments

    parser = argparse.ArgumentParser()
    _add_dataclass_arguments(parser, TrainConfig)
    assert _config_from_args(TrainConfig, parser.parse_args(config_arguments(config))) == config


def test_a_setting_no_flag_can_give_is_refused():
    from ptgm.cli import config_arguments
    from ptgm.lowlevel.train import PretrainConfig

    with pytest.raises(ValueError, match="hidden"):  # nargs="+" takes no empty list
        config_arguments(PretrainConfig(hidden=()))


@pytest.mark.parametrize("flags, expected", [([], None), (["--target-kl", "0.05"], 0.05), (["--target-kl", "0"], 0.0)])
def test_optional_numbers_stay_unset_until_given(flags, expected):
    import argparse

    from ptgm.cli import _add_dataclass_arguments

    parser = argparse.ArgumentParser()
    _add_dataclass_arguments(parser, TrainConfig)
    assert parser.parse_args(flags).target_kl == expected


def test_a_chain_with_a_starting_inventory_from_the_command_line(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    task = ["--task", "collect_wood,place_table", "--start-inventory", "wood=1"]
    assert main(["train", "--run-dir", str(run), *task, "--env-steps", "300", "--n-envs", "2", "--n-steps", "8",
                 "--eval-episodes", "1"]) == 0
    folder = run / "rl" / "collect_wood,place_table+wood=1" / "ptgm-seed0"  # runs with other starting items differ
    assert (folder / "DONE.json").exists()
    assert main(["evaluate", "--run-dir", str(run), *task, "--episodes", "1"]) == 0
    assert main(["train", "--run-dir", str(run), "--task", "collect_wood", "--start-inventory", "gold=1"]) == 2
    assert "Unknown Crafter item 'gold'" in capsys.readouterr().err
