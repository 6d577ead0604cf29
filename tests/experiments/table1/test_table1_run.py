"""``run_table1`` through the command line: every data set, the report, the epoch cap."""

from __future__ import annotations

import math

import torch
from click.testing import CliRunner

from bptt.cli import main
from bptt.experiments.table1 import DATASET_LABEL, DATASETS
from bptt.store import Store
from bptt.training import checkpoint

from table1_toys import DATA_DIR, check_outcome, needs_data


@needs_data
def test_smoke_every_data_set_through_the_command_line(tmp_path):
    store_path, out = tmp_path / "runs.sqlite", tmp_path / "out"
    args = ["reproduce", "table1", "--budget", "smoke", "--data-dir", str(DATA_DIR), "--store", str(store_path),
            "--out", str(out), "--threads", "1", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    store = Store(store_path)
    runs = store.list_runs()
    assert len(runs) == 3 * len(DATASETS)
    for r in runs:
        m = check_outcome(store, r["id"])          # the status the recorded curve decides
        assert math.isfinite(m["train"]) and math.isfinite(m["test"]) and m["updates"] == 6
        if r["config"]["method"] == "msgd":
            assert m["clipped_fraction"] == 0.0
        if r["config"]["dataset"].startswith("ptb"):
            _, payload = store.load_checkpoint(r["id"])
            best = checkpoint.loads(payload)
            assert torch.count_nonzero(best["model"]["b"]) == 0
    report = (out / "table1.md").read_text()
    for label in DATASET_LABEL.values():
        assert label in report
    assert "3.67 / 3.80" in report and "ms / update" in report
    for name in ("table1.json", "table1.png", "table1.svg"):
        assert (out / name).stat().st_size > 0
    # Again: everything is read back from the store, nothing is trained.
    again = CliRunner().invoke(main, args + ["--dataset", "nottingham"])
    assert again.exit_code == 0, again.output
    assert "not trained again" in again.output and len(store.list_runs()) == 3 * len(DATASETS)


def test_a_missing_data_folder_is_reported(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "table1", "--budget", "smoke", "--dataset", "jsb_chorales",
                                       "--data-dir", str(tmp_path / "nowhere"), "--store",
                                       str(tmp_path / "s.sqlite"), "--no-progress"])
    assert result.exit_code != 0
    assert "music/JSB_Chorales.mat" in result.output and str(tmp_path / "nowhere") in result.output
    assert "bptt data download --dataset jsb_chorales" in result.output


@needs_data
def test_max_epochs_caps_training_and_keeps_capped_runs_apart(tmp_path):
    store_path = tmp_path / "runs.sqlite"
    args = ["reproduce", "table1", "--budget", "smoke", "--dataset", "jsb_chorales", "--data-dir", str(DATA_DIR),
            "--store", str(store_path), "--out", str(tmp_path / "out"), "--no-progress"]
    capped = CliRunner().invoke(main, args + ["--max-epochs", "1"])
    assert capped.exit_code == 0, capped.output
    runs = Store(store_path).list_runs()
    assert len(runs) == 3
    assert {r["config"]["max_epochs"] for r in runs} == {1}
    assert {r["metrics"]["updates"] for r in runs} == {3}            # one epoch of 3 smoke updates
    assert "epoch budget (1) spent" in (tmp_path / "out" / "table1.md").read_text()
    # The uncapped budget is a different ensemble: it trains anew instead of reading the capped runs back.
    uncapped = CliRunner().invoke(main, args)
    assert uncapped.exit_code == 0, uncapped.output
    assert "not trained again" not in uncapped.output
    assert len(Store(store_path).list_runs()) == 6


@needs_data
def test_table1_is_a_reproduction_like_the_others(tmp_path, monkeypatch):
    """Default budget smoke, output under reproductions/table1-smoke with report.md and a
    self-contained report.html, `bptt report table1-smoke`, and runs that `bptt runs` and
    `bptt sweeps` describe."""
    monkeypatch.chdir(tmp_path)
    store_path = str(tmp_path / "runs.sqlite")
    result = CliRunner().invoke(main, ["reproduce", "table1", "--dataset", "jsb_chorales", "--data-dir",
                                       str(DATA_DIR), "--store", store_path, "--no-progress"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "reproductions" / "table1-smoke"
    for name in ("report.md", "report.html", "table1.md", "table1.png"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page and "JSB Chorales" in page
    assert "smoke budget" in (out / "report.md").read_text()
    runs = Store(store_path).list_runs()
    assert {r["sweep"] for r in runs} == {"table1-smoke"}
    for name in ("report.md", "report.html"):
        (out / name).unlink()
    again = CliRunner().invoke(main, ["report", "table1-smoke", "--store", store_path])
    assert again.exit_code == 0, again.output
    assert "not trained again" in again.output and (out / "report.html").exists()
    assert len(Store(store_path).list_runs()) == 3
    listed = CliRunner().invoke(main, ["runs", "--store", store_path, "--sweep", "table1-smoke"]).output
    for r in runs:
        line = next(line for line in listed.splitlines() if line.split()[0] == str(r["id"]))
        assert "jsb_chorales" in line and r["config"]["method"] in line and "nll" in line.lower()
        assert f"{r['metrics']['epochs']} ep" in line and "None" not in line
    sweeps = CliRunner().invoke(main, ["sweeps", "--store", store_path]).output
    assert "table1-smoke" in sweeps
    missing = CliRunner().invoke(main, ["report", "table1-full", "--store", store_path])
    assert missing.exit_code != 0 and "no finished Table 1 runs of the full budget" in missing.output
