"""The commands of the rival remedies: ``bptt plot penalties``, ``bptt plot teacher-forcing``
and ``bptt train --l1/--l2``."""

from click.testing import CliRunner

from bptt.cli import main


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_plot_teacher_forcing_writes_the_figure(tmp_path):
    r = run(["plot", "teacher-forcing", "--out", str(tmp_path), "--iterations", "40"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "teacher-forcing-it40.png").stat().st_size > 1000
    assert (tmp_path / "teacher-forcing-it40.svg").exists()
    rows = (tmp_path / "teacher-forcing-it40.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 41


def test_plot_teacher_forcing_refuses_a_task_without_trajectory(tmp_path):
    r = CliRunner().invoke(main, ["plot", "teacher-forcing", "--target", "temporal_order", "--out", str(tmp_path)])
    assert r.exit_code != 0
    assert "no target trajectory" in r.output and "Traceback" not in r.output


def test_plot_penalties_and_bad_lists(tmp_path):
    r = run(["plot", "penalties", "--l2", "0,1", "--lengths", "10", "--seeds", "0", "--updates", "20",
             "--check-every", "10", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "penalties-l2-0,1-L10-seeds-0-u20-every10.png").exists()
    assert r.output.split()[-1].endswith("penalties-l2-0,1-L10-seeds-0-u20-every10.csv")
    r = CliRunner().invoke(main, ["plot", "penalties", "--l2", "a,b", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "comma-separated" in r.output


def test_train_takes_penalties(tmp_path):
    store = str(tmp_path / "s.sqlite")
    r = run(["train", "--length", "20", "--hidden", "8", "--max-updates", "20", "--eval-every", "10",
             "--eval-sequences", "100", "--no-progress", "--l2", "0.5", "--store", store])
    assert r.exit_code == 0, r.output
    from bptt.store import Store
    s = Store(store)
    runs = s.list_runs()
    assert runs and all(row["config"]["l2"] == 0.5 for row in runs)
    r = CliRunner().invoke(main, ["train", "--l1", "-1", "--store", store])
    assert r.exit_code == 2 and "--l1" in r.output


def test_reproduce_table1_takes_dropout_in_range(tmp_path):
    r = CliRunner().invoke(main, ["reproduce", "table1", "--dropout", "1.5", "--store", str(tmp_path / "s.sqlite")])
    assert r.exit_code == 2 and "--dropout" in r.output
    r = CliRunner().invoke(main, ["reproduce", "table1", "--help"])
    assert "--dropout" in r.output and "Zaremba" in r.output
