"""Table 1's report: our figures beside the paper's, the runs, the stored JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bptt.experiments.table1 import PAPER_TABLE1, table_markdown, train_natural, write_report
from bptt.methods import METHODS, Method
from bptt.store import Store

from table1_toys import small, toy_music


def test_the_report_puts_each_method_beside_the_paper(tmp_path):
    store = Store(":memory:")
    res = train_natural(small(max_epochs=2), store, source=toy_music())
    results = {"nottingham": res}
    table = table_markdown(results)
    head, _, row = table.splitlines()
    assert [c.strip() for c in head.strip("|").split("|")][1:] == \
        [f"{m.label} {who}" for m in METHODS for who in ("ours", "paper")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "Nottingham (NLL)"
    for k, m in enumerate(METHODS):
        mem = res.member(m)
        assert cells[1 + 2 * k] == f"{mem.train:.2f} / {mem.test:.2f}"
        train, test = PAPER_TABLE1["nottingham"][m]
        assert cells[2 + 2 * k] == f"{train:.2f} / {test:.2f}"

    paths = write_report(results, store, tmp_path, budget="smoke", seconds=12.0)
    assert [p.name for p in paths] == ["table1.md", "table1.json", "table1.png", "table1.svg",
                                       "table1-updates.png", "table1-updates.svg"]
    text = (tmp_path / "table1.md").read_text()
    assert table in text and "MSGD+C" not in text
    # a smoke report says so first; it states every setting with its source and what produced it
    assert text.splitlines()[2].startswith("> **Smoke budget")
    from bptt.experiments.manifest import provenance
    from bptt.experiments.protocol_table import markdown, table1_rows
    assert markdown(table1_rows(configs={"nottingham": small(max_epochs=2)})) in text
    assert "| how t of α_t counts | epochs, from 1 |" in text
    made = json.loads((tmp_path / "table1.json").read_text())["provenance"]
    assert made["command"] == provenance()["command"]
    assert (f"commit `{made['commit'][:12]}`" if made["commit"] else f"bptt {made['version']}") in text
    for mem in res.members:
        assert f"| Nottingham | {Method(mem.method).label} | {mem.run_id} | {mem.status} | " \
               f"{mem.best_epoch} / {mem.epochs} |" in text
    stored = json.loads((tmp_path / "table1.json").read_text())["datasets"]["nottingham"]
    assert [m["method"] for m in stored["members"]] == [m.value for m in METHODS]
    assert stored["paper"]["msgd-cr"] == list(PAPER_TABLE1["nottingham"]["msgd-cr"])
    assert stored["config"]["methods"] == [m.value for m in METHODS]
    for p in paths[2:]:
        assert p.stat().st_size > 0


def test_the_update_curve_is_the_running_mean_of_the_recorded_loss_in_the_measure():
    import math

    from bptt.experiments.table1.report import update_curve

    store = Store(":memory:")
    rid = store.start_run({"x": 1}, sweep="t")
    store.log_curve(rid, [{"step": 10 * (i + 1), "loss": float(v)} for i, v in enumerate([4, 2, float("nan"), 6, 8])])
    s, v = update_curve(store, rid, lambda x: x / math.log(2), window=2)
    ln2 = math.log(2)
    assert s == [10, 20, 40, 50]                                # the non-finite block left out
    assert v == pytest.approx([4 / ln2, 3 / ln2, 4 / ln2, 7 / ln2])
    assert update_curve(store, store.start_run({"x": 2}, sweep="t"), float) == ([], [])


def test_the_runs_record_the_threads_and_build_they_trained_with_and_the_report_names_them(tmp_path):
    store = Store(":memory:")
    res = train_natural(small(max_epochs=1), store, source=toy_music(), threads=2)
    for mem in res.members:
        rec = store.get_run(mem.run_id)["metrics"]["finished_on"]
        assert rec["threads"] == 2 and rec["torch"] == torch.__version__
        assert mem.finished_on == rec
    assert torch.get_num_threads() == 1                 # the test's own setting, given back
    write_report({"nottingham": res}, store, tmp_path, budget="smoke")
    text = (tmp_path / "table1.md").read_text()
    rec = res.members[0].finished_on
    assert f"Trained on {rec['host']}, {rec['cpu'] or 'unknown CPU'}, torch {rec['torch']}, 2 thread(s): " \
           f"Nottingham." in text
    # runs stored before the record existed are named as such, not given this machine's
    older = dataclasses.replace(res, members=[dataclasses.replace(m, finished_on=None) for m in res.members])
    write_report({"nottingham": older}, store, tmp_path, budget="smoke")
    text = (tmp_path / "table1.md").read_text()
    assert "Trained on a machine not recorded (runs from before it was): Nottingham." in text
    assert "thread(s)" not in text
