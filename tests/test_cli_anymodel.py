"""``bptt train --model --optimizer --clip``: every combination records its runs with the
settings asked for; names, values and combinations that do not fit are clean errors."""

import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.store import Store
from bptt.training.config import ANY_MODEL_DEFAULTS, TrainConfig

DEFAULTS = {**ANY_MODEL_DEFAULTS, "method": TrainConfig.method, "clip": TrainConfig.clip}

SMALL = ["--task", "memorization", "--length", "5", "--hidden", "6", "--max-updates", "12", "--eval-every", "6",
         "--eval-sequences", "40", "--no-progress", "--seeds", "0,1"]


def run(args):
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


@pytest.mark.parametrize("args,want", [
    (["--model", "lstm", "--method", "msgd-c", "--optimizer", "adam", "--clip", "zclip", "--zclip-z", "2.0",
      "--clip-warmup", "3", "--betas", "0.8", "0.99"],
     {"model": "lstm", "optimizer": "adam", "clip": "zclip", "betas": [0.8, 0.99],
      "clip_options": {"z_threshold": 2.0, "warmup": 3}}),
    (["--model", "skip", "--model-option", "delay=2", "--method", "msgd-c", "--optimizer", "nesterov",
      "--momentum", "0.5", "--clip", "average-norm", "--clip-window", "4"],
     {"model": "skip", "model_options": {"delay": 2}, "momentum": 0.5, "clip_options": {"window": 4}}),
    (["--model", "esn", "--method", "msgd", "--optimizer", "rmsprop", "--clip", "none", "--eps", "1e-6",
      "--smoothing", "0.9"],
     {"model": "esn", "optimizer": "rmsprop", "clip": "none", "eps": 1e-6, "smoothing": 0.9}),
    (["--method", "msgd-cr", "--optimizer", "adam", "--clip", "agc", "--agc-clipping", "0.05",
      "--weight-decay", "0.001"],
     {"model": "elman", "method": "msgd-cr", "clip_options": {"clipping": 0.05}, "weight_decay": 0.001}),
    (["--model", "gru", "--method", "msgd-c", "--clip", "autoclip", "--clip-percentile", "50"],
     {"model": "gru", "optimizer": "sgd", "clip_options": {"percentile": 50.0}}),
])
def test_train_records_the_model_optimizer_and_clipper_asked_for(tmp_path, args, want):
    path = tmp_path / "runs.sqlite"
    result = run([*SMALL, *args, "--store", str(path)])
    assert result.exit_code == 0, result.output
    runs = Store(path).list_runs()
    assert len(runs) == 2
    for r in runs:
        assert r["status"] in ("succeeded", "failed") and r["metrics"]["updates"] > 0
        for k, v in want.items():
            assert r["config"].get(k, DEFAULTS[k]) == v, k


@pytest.mark.parametrize("args,match", [
    (["--lr", "nan"], "learning rate"),
    (["--threshold", "inf", "--method", "msgd-c"], "clipping threshold"),
    (["--alpha", "nan"], "alpha"),
    (["--optimizer", "nesterov", "--momentum", "nan"], "momentum must be"),
    (["--optimizer", "adam", "--betas", "0.9", "inf"], "betas must be"),
    (["--optimizer", "adam", "--eps", "nan"], "eps must be"),
    (["--optimizer", "rmsprop", "--weight-decay", "inf"], "weight_decay must be"),
    (["--optimizer", "rmsprop", "--smoothing", "nan"], "smoothing"),
    (["--optimizer", "adam", "--smoothing", "0.9"], "takes no smoothing"),
    (["--method", "msgd-c", "--clip", "zclip", "--zclip-z", "nan"], "finite"),
    (["--model", "esn"], "keeps its recurrent weights fixed"),
    (["--optimizer", "sgd", "--momentum", "0.9"], "takes no momentum"),
    (["--method", "msgd-c", "--clip", "none"], "clipping 'none'"),
    (["--clip", "norm", "--zclip-z", "2"], "--zclip-z is an option of --clip zclip"),
    (["--model", "esn", "--method", "msgd", "--unit", "relu"], "takes no unit"),
    (["--model", "lstm", "--method", "msgd", "--model-option", "delay=3"], "takes no option delay"),
    (["--model-option", "oops"], "expected NAME=VALUE"),
    (["--optimizer", "adamw"], "'adamw' is not one of 'sgd', 'nesterov', 'rmsprop', 'adam'"),
    (["--model", "rnn"], "'rnn' is not one of 'elman', 'lstm', 'gru', 'leaky', 'skip', 'esn'"),
    (["--clip", "spike"], "'spike' is not one of 'norm', 'elementwise', 'average-norm', 'autoclip', 'agc'"),
])
def test_what_does_not_fit_is_a_clean_error(tmp_path, args, match):
    result = run([*SMALL, *args, "--store", str(tmp_path / "runs.sqlite")])
    assert result.exit_code == 2, result.output
    assert match in result.output and "Traceback" not in result.output


def test_help_explains_every_option_of_the_group():
    text = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    for option in ("--model", "--model-option", "--optimizer", "--momentum", "--betas", "--eps", "--weight-decay",
                   "--smoothing", "--clip-factor", "--clip-window", "--clip-warmup", "--clip-percentile", "--clip-history",
                   "--agc-clipping", "--zclip-z", "--zclip-alpha"):
        assert option in text, option
    assert "average-norm" in text and "Nesterov" in text


def test_train_an_lstm_with_omega(tmp_path):
    """``--model lstm --method msgd-cr``: Ω is computed and weighed (α/t schedule too)."""
    path = tmp_path / "runs.sqlite"
    result = run([*SMALL, "--model", "lstm", "--method", "msgd-cr", "--alpha", "2.0", "--alpha-schedule",
                  "inverse", "--record-every", "3", "--store", str(path)])
    assert result.exit_code == 0, result.output
    store = Store(path)
    runs = store.list_runs()
    assert len(runs) == 2
    for r in runs:
        assert r["config"]["model"] == "lstm" and r["config"]["method"] == "msgd-cr"
        assert r["metrics"]["updates"] == 12
        steps, omega = store.get_curve(r["id"], ["omega"])["omega"]
        assert len(omega) >= 3 and (omega > 0).all()
