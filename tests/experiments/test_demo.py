"""The main demonstration, at a tiny budget: it trains, tabulates, and draws."""

import json

from bptt.experiments.demo import run_demo
from bptt.store import Store


def test_demo_smoke(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    lines = []
    out = run_demo(store=store, updates=100, seeds=[0, 1], length=20, out_dir=tmp_path / "demo",
                   progress=False, echo=lines.append)
    assert [r["method"] for r in out["rows"]] == ["MSGD", "MSGD-C", "MSGD-CR"]
    assert all(r["runs"] == 2 for r in out["rows"])
    for name in ("demo.md", "demo.json", "demo.png", "demo.svg"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    data = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert data["length"] == 20 and len(data["rows"]) == 3
    assert len(store.list_runs(sweep="demo")) == 6
    assert any("| MSGD-CR |" in line for line in "\n".join(lines).splitlines())
