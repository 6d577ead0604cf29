"""The main demonstration, at a tiny budget: it trains, tabulates, and draws the store's curves."""

import json

import matplotlib.colors as mcolors
import numpy as np
import pytest

from bptt.experiments import demo
from bptt.methods import METHOD_COLOR, METHODS
from bptt.store import Status, Store


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("demo")
    store = Store(tmp_path / "s.sqlite")
    lines, figures = [], []
    draw = demo.demo_figure

    def capture(results, title=""):
        figures.append(draw(results, title))
        return figures[-1]

    mp = pytest.MonkeyPatch()
    mp.setattr(demo, "demo_figure", capture)
    try:
        out = demo.run_demo(store=store, updates=100, seeds=[0, 1], length=20, out_dir=tmp_path / "demo",
                            progress=False, echo=lines.append)
    finally:
        mp.undo()
    return store, out, lines, figures, tmp_path / "demo"


def test_demo_tabulates_what_the_store_holds(demo_run):
    store, out, lines, _, out_dir = demo_run
    assert [r["method"] for r in out["rows"]] == [m.label for m in METHODS]
    for row, method in zip(out["rows"], METHODS):
        runs = [store.get_run(i) for i in row["run_ids"]]
        assert [r["config"]["method"] for r in runs] == [method.value] * 2
        assert row["runs"] == 2
        assert row["succeeded"] == sum(r["status"] == Status.SUCCEEDED for r in runs)
        assert row["final_error_mean"] == pytest.approx(np.mean([r["metrics"]["error"] for r in runs]))
    data = json.loads((out_dir / "demo.json").read_text())
    assert data["length"] == 20 and data["rows"] == out["rows"]
    assert len(store.list_runs(sweep="demo")) == 6
    assert any("| MSGD-CR |" in line for line in "\n".join(lines).splitlines())
    assert "![demo](demo.png)" in (out_dir / "demo.md").read_text()


def test_demo_figure_draws_the_stored_curves(demo_run):
    store, out, _, figures, out_dir = demo_run
    assert len(figures) == 1
    for name in ("demo.png", "demo.svg"):
        assert (out_dir / name).stat().st_size > 0
    axes = figures[0].axes
    panels = [("check_error", 100.0), ("loss", 1.0), ("grad_norm", 1.0)]
    for row, method in zip(out["rows"], METHODS):
        curves = [store.get_curve(i) for i in row["run_ids"]]
        colour = mcolors.to_rgba(METHOD_COLOR[method])
        for ax, (name, scale) in zip(axes, panels):
            drawn = [line for line in ax.get_lines() if mcolors.to_rgba(line.get_color(), 1) == colour]
            assert len(drawn) == len(curves), (method, name)
            for line, curve in zip(drawn, curves):
                steps, values = curve[name]
                np.testing.assert_array_equal(line.get_xdata(), steps)
                np.testing.assert_allclose(line.get_ydata(), scale * np.asarray(values))
            assert drawn[0].get_label() == method.label
    assert axes[2].get_yscale() == "log"
