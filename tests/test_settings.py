"""Settings are validated once, at the edge: one `ptgm CMD: error:` line, nothing written."""

from __future__ import annotations

import pytest

from ptgm.cli import main
from ptgm.settings import PriorConfig, TrainConfig


@pytest.mark.parametrize("args, message", [
    (["train", "--domain", "kitchen", "--task", "microwave,kettel"], "Unknown Kitchen subtask 'kettel'"),
    (["train", "--seed", "-1"], "--seed must be at least 0"),
    (["train", "--k", "0"], "--k must be at least 1"),
    (["train", "--env-steps", "0"], "--env-steps must be at least 1"),
    (["train", "--gamma", "1.5"], "--gamma must be between 0 and 1"),
    (["cluster", "--n-clusters", "-1"], "--n-clusters must be at least 1"),
    (["generate", "--transitions", "-5"], "--transitions must be at least 1"),
    (["pretrain", "--k-min", "5", "--k-max", "2"], "1 ≤ --k-min ≤ --k-max"),
    (["pretrain", "--action-head", "flow"], "Unknown action head 'flow'"),
    (["train", "--method", "sac"], "needs continuous (Box) actions"),
    (["bench", "--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_settings_get_one_clear_line_and_nothing_is_written(args, message, tmp_path, capsys):
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"ptgm {args[0]}: error:" in err and message in err and "Traceback" not in err
    assert not list((tmp_path / "run").rglob("DONE.json"))


def test_unset_means_the_domain_or_method_default_and_zero_means_zero():
    assert TrainConfig(domain="kitchen").gamma == 0.99 and TrainConfig().gamma == 0.95  # high-level discounts
    assert TrainConfig(method="ppo").gamma == 0.99 and TrainConfig(method="ppo").n_steps == 256
    assert TrainConfig(gamma=0.0).gamma == 0.0  # γ = 0 can be asked for
    assert TrainConfig(domain="kitchen").target_kl == 0.02 and TrainConfig(domain="kitchen", method="sac").target_kl == 0
    assert TrainConfig(domain="kitchen", target_kl=0.0).target_kl == 0.0
    assert PriorConfig().k_max is None  # filled from the low-level policy when the prior trains
