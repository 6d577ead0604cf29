import math
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bptt.store import (
    FINAL_STATUSES,
    SCHEMA_VERSION,
    Store,
    config_json,
    config_key,
    default_store_path,
)

CONFIG = {"task": "addition", "T": 50, "lr": 0.01, "clip": 1.0, "seed": 3}


@pytest.fixture
def store():
    with Store(":memory:") as s:
        yield s


@pytest.fixture
def path(tmp_path):
    return tmp_path / "sub" / "dir" / "results.sqlite"


# --------------------------------------------------------------------- opening


def test_creates_parent_dirs_schema_and_wal(path):
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
    assert path.exists()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "runs", "curves", "events", "checkpoints"} <= tables
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] \
            == str(SCHEMA_VERSION)
    finally:
        conn.close()


def test_reopen_is_idempotent_and_keeps_results(path):
    with Store(path) as s:
        rid = s.start_run(CONFIG, sweep="a")
        s.log_curve(rid, [{"step": 1, "loss": 0.5}])
        s.finish_run(rid, "succeeded", {"error": 0.0})
    for _ in range(2):
        with Store(path) as s:
            run = s.get_run(rid)
            assert run["status"] == "succeeded"
            assert run["metrics"] == {"error": 0.0}
            assert s.get_curve(rid)["loss"][1].tolist() == [0.5]
            assert len(s.list_runs()) == 1


def test_busy_timeout_set(path):
    with Store(path) as s:
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30000


def test_default_store_path(monkeypatch, tmp_path):
    monkeypatch.delenv("BPTT_STORE", raising=False)
    assert default_store_path() == Path("bptt-results.sqlite")
    monkeypatch.setenv("BPTT_STORE", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
    assert isinstance(default_store_path(), Path)


def test_corrupt_file_is_refused_and_untouched(tmp_path):
    bad = tmp_path / "bad.sqlite"
    rng = np.random.default_rng(0)
    content = b"not a database\x00" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="bad.sqlite"):
        Store(bad)
    assert bad.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite"]


def test_corrupt_body_with_valid_header_is_refused_and_untouched(tmp_path):
    bad = tmp_path / "bad.sqlite"
    rng = np.random.default_rng(1)
    content = b"SQLite format 3\x00" + rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="bad.sqlite"):
        Store(bad)
    assert bad.read_bytes() == content


def test_newer_schema_is_refused(path):
    with Store(path) as s:
        s.start_run(CONFIG)
        with s._write() as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ValueError, match="newer"):
        Store(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    finally:
        conn.close()


def test_closed_store_raises(path):
    s = Store(path)
    s.close()
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.list_runs()


# ------------------------------------------------------------------------ runs


def test_run_round_trip(store):
    rid = store.start_run(CONFIG, sweep="sw")
    run = store.get_run(rid)
    assert run["id"] == rid
    assert run["status"] == "running"
    assert run["config"] == CONFIG
    assert run["metrics"] == {}
    assert run["sweep"] == "sw"
    assert run["key"] == config_key(CONFIG) and len(run["key"]) == 16
    assert run["pid"] == os.getpid()
    assert run["host"]
    assert run["created"].endswith("+00:00") and run["updated"] >= run["created"]
    stored = store._conn.execute("SELECT config FROM runs WHERE id = ?", (rid,)).fetchone()[0]
    assert stored == config_json(CONFIG)
    assert list(CONFIG) != sorted(CONFIG) and stored.index('"T"') < stored.index('"task"')


def test_custom_key_and_config_key_is_order_independent(store):
    assert config_key({"a": 1, "b": 2}) == config_key({"b": 2, "a": 1})
    rid = store.start_run(CONFIG, key="mykey")
    assert store.get_run(rid)["key"] == "mykey"


def test_update_and_finish_run(store):
    rid = store.start_run(CONFIG)
    store.update_run(rid, metrics={"step": 10, "loss": 1.5})
    store.update_run(rid, metrics={"step": 20, "best": np.float32(0.25)})
    assert store.get_run(rid)["metrics"] == {"step": 20, "loss": 1.5, "best": 0.25}
    store.finish_run(rid, "diverged", {"loss": math.inf, "nan": math.nan})
    run = store.get_run(rid)
    assert run["status"] == "diverged"
    assert run["metrics"]["loss"] == math.inf and math.isnan(run["metrics"]["nan"])
    store.update_run(rid, status="stopped")
    assert store.get_run(rid)["status"] == "stopped"


@pytest.mark.parametrize("status", ["running", "done", "", "SUCCEEDED"])
def test_finish_run_bad_status(store, status):
    rid = store.start_run(CONFIG)
    with pytest.raises(ValueError, match="status"):
        store.finish_run(rid, status, {})
    assert store.get_run(rid)["status"] == "running"


def test_update_run_bad_status(store):
    rid = store.start_run(CONFIG)
    with pytest.raises(ValueError):
        store.update_run(rid, status="bogus")


def test_unknown_run_id(store):
    with pytest.raises(KeyError, match="42"):
        store.get_run(42)
    with pytest.raises(KeyError):
        store.finish_run(42, "succeeded", {})
    with pytest.raises(KeyError):
        store.log_curve(42, [{"step": 0, "loss": 1.0}])
    with pytest.raises(KeyError):
        store.log_event(42, 0, "nonfinite")
    with pytest.raises(KeyError):
        store.save_checkpoint(42, 0, b"x")


def test_list_runs(store):
    a = store.start_run({"x": 1}, sweep="s1")
    b = store.start_run({"x": 2}, sweep="s1")
    c = store.start_run({"x": 3}, sweep="s2")
    store.finish_run(a, "succeeded", {})
    assert [r["id"] for r in store.list_runs()] == [c, b, a]
    assert [r["id"] for r in store.list_runs(sweep="s1")] == [b, a]
    assert [r["id"] for r in store.list_runs(status="running")] == [c, b]
    assert [r["id"] for r in store.list_runs(sweep="s1", status="succeeded")] == [a]
    assert [r["id"] for r in store.list_runs(limit=2)] == [c, b]
    assert [r["id"] for r in store.list_runs(key=config_key({"x": 2}))] == [b]
    assert store.list_runs(sweep="none") == []


# -------------------------------------------------------------------- claiming


def test_claim_new_then_live_refused(store):
    rid = store.claim("k1", CONFIG, sweep="s")
    assert isinstance(rid, int)
    run = store.get_run(rid)
    assert run["key"] == "k1" and run["status"] == "running" and run["sweep"] == "s"
    assert store.claim("k1", CONFIG, sweep="s") is None  # running, owner (us) alive


@pytest.mark.parametrize("status", ["succeeded", "failed", "diverged"])
def test_claim_finished_refused(store, status):
    rid = store.claim("k", CONFIG)
    store.finish_run(rid, status, {})
    assert store.claim("k", CONFIG) is None
    assert store.claim("k", CONFIG, stale_after=0) is None


def test_claim_after_stopped(store):
    rid = store.claim("k", CONFIG)
    store.finish_run(rid, "stopped", {})
    rid2 = store.claim("k", CONFIG)
    assert rid2 is not None and rid2 != rid
    assert store.claim("k", CONFIG) is None


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_dead_owner(path):
    with Store(path) as s:
        dead_id = s.claim("k", {"a": 1})
        s._conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), dead_id))
    with Store(path) as s:
        dead = s.get_run(dead_id)
        assert dead["status"] == "running" and dead["pid"] != os.getpid()
        rid = s.claim("k", {"a": 1})
        assert rid is not None and rid != dead_id
        assert s.get_run(dead_id)["status"] == "stopped"
        assert s.count_events(dead_id, "superseded") == 1
        assert s.claim("k", {"a": 1}) is None


def test_claim_stale_after(store):
    rid = store.claim("k", CONFIG)
    store._conn.execute("UPDATE runs SET updated = '2000-01-01T00:00:00+00:00' WHERE id = ?",
                        (rid,))
    assert store.claim("k", CONFIG, stale_after=3600) is not None
    rid3 = store.claim("k2", CONFIG)
    assert store.claim("k2", CONFIG, stale_after=3600) is None  # fresh heartbeat
    store.update_run(rid3)
    assert store.claim("k2", CONFIG, stale_after=3600) is None


def test_claim_other_host_not_considered_dead(store):
    rid = store.claim("k", CONFIG)
    store._conn.execute("UPDATE runs SET host = 'elsewhere', pid = 999999999 WHERE id = ?",
                        (rid,))
    assert store.claim("k", CONFIG) is None
    assert store.claim("k", CONFIG, stale_after=0) is not None


def test_is_live_agrees_with_claim(path):
    with Store(path) as s:
        mine = s.start_run({"a": 1}, key="mine")
        assert s.is_live(s.get_run(mine)) and s.owns(s.get_run(mine))
        dead = s.start_run({"a": 2}, key="dead")
        s._conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), dead))
        far = s.start_run({"a": 3}, key="far")
        s._conn.execute("UPDATE runs SET host = 'elsewhere', pid = 999999999,"
                        " updated = '2000-01-01T00:00:00+00:00' WHERE id = ?", (far,))
        done = s.start_run({"a": 4}, key="done")
        s.finish_run(done, "stopped", {})
        runs = {r["key"]: r for r in s.list_runs()}
        assert not s.is_live(runs["dead"]) and not s.owns(runs["dead"])
        assert s.is_live(runs["far"]) and not s.is_live(runs["far"], stale_after=3600)
        assert not s.owns(runs["far"])
        assert not s.is_live(runs["done"]) and s.owns(runs["done"])
        assert s.is_live(runs["mine"], stale_after=3600)
        # what is live, claim refuses; what is not, claim takes over
        for key, stale_after in (("mine", None), ("dead", None), ("far", None), ("far", 3600), ("done", None)):
            live = s.is_live(s.list_runs(key=key, limit=1)[0], stale_after=stale_after)
            assert (s.claim(key, {"k": key}, stale_after=stale_after) is None) == live, (key, stale_after)


def test_finished_keys(store):
    for i, status in enumerate(["succeeded", "failed", "diverged", "stopped", None]):
        rid = store.claim(f"k{i}", {"i": i}, sweep="s")
        if status:
            store.finish_run(rid, status, {})
    other = store.claim("o", {}, sweep="t")
    store.finish_run(other, "succeeded", {})
    assert store.finished_keys("s") == {"k0", "k1", "k2"}
    assert store.finished_keys() == {"k0", "k1", "k2", "o"}


def _claim_worker(path, keys, queue, barrier):
    try:
        claimed = []
        barrier.wait(timeout=60)  # all workers create/open the file together
        with Store(path) as s:
            barrier.wait(timeout=60)  # and then race for the same keys
            for key in keys:
                rid = s.claim(key, {"key": key}, sweep="conc")
                if rid is not None:
                    s.log_curve(rid, [{"step": 0, "loss": 1.0}])
                    s.finish_run(rid, "succeeded", {"pid": os.getpid()})
                    claimed.append((key, rid))
        queue.put(("ok", claimed))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc)))


def test_concurrent_claims_each_key_once(tmp_path):
    path = tmp_path / "conc.sqlite"
    keys = [f"key{i:02d}" for i in range(20)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(4)
    procs = []
    for w in range(4):
        order = keys if w % 2 == 0 else keys[::-1]
        procs.append(ctx.Process(target=_claim_worker, args=(str(path), order, queue, barrier)))
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = [r for tag, r in results if tag == "error"]
    assert errors == []
    claimed = [kv for _, c in results for kv in c]
    assert sorted(k for k, _ in claimed) == keys
    with Store(path) as s:
        runs = s.list_runs(sweep="conc")
        assert len(runs) == 20
        assert sorted(r["key"] for r in runs) == keys
        assert all(r["status"] == "succeeded" for r in runs)
        assert s.finished_keys("conc") == set(keys)


# ---------------------------------------------------------------------- curves


def test_curve_round_trip(store):
    rid = store.start_run(CONFIG)
    rows = [
        {"step": 2, "loss": 0.5, "grad_norm": 3.0, "clipped": True, "omega": 0.1,
         "omega_fraction": 0.2, "rho": 1.05},
        {"step": 1, "loss": 0.7, "grad_norm": 12.0, "clipped": 1.0, "rho": np.float64(1.1)},
        {"step": 3, "loss": 0.4, "grad_norm": 1.0, "clipped": False},
        {"step": 3, "valid_error": 0.25, "loss": None},
    ]
    store.log_curve(rid, rows)
    curves = store.get_curve(rid)
    assert set(curves) == {"loss", "grad_norm", "clipped", "omega", "omega_fraction", "rho",
                           "valid_error"}
    steps, values = curves["loss"]
    assert steps.dtype == np.int64 and values.dtype == np.float64
    assert steps.tolist() == [1, 2, 3] and values.tolist() == [0.7, 0.5, 0.4]
    assert curves["clipped"][1].tolist() == [1.0, 1.0, 0.0]
    assert curves["valid_error"][0].tolist() == [3]
    assert curves["omega"][0].tolist() == [2]
    sub = store.get_curve(rid, names=["rho", "missing"])
    assert set(sub) == {"rho", "missing"}
    assert sub["rho"][1].tolist() == [1.1, 1.05]
    assert sub["missing"][0].size == 0 and sub["missing"][1].size == 0
    assert store.get_curve(rid, names=[]) == {}


def test_curve_nonfinite_round_trip(store):
    rid = store.start_run(CONFIG)
    vals = [math.nan, math.inf, -math.inf, 0.0, -1e300, 5e-324]
    store.log_curve(rid, [{"step": i, "loss": v} for i, v in enumerate(vals)])
    store.log_curve(rid, [{"step": 10, "grad_norm": np.float32("nan")}])
    steps, values = store.get_curve(rid)["loss"]
    assert steps.tolist() == list(range(6))
    assert math.isnan(values[0])
    assert values[1] == math.inf and values[2] == -math.inf
    assert values[3:].tolist() == vals[3:]
    assert np.isnan(store.get_curve(rid, ["grad_norm"])["grad_norm"][1]).all()


def test_curve_relog_replaces_and_runs_are_separate(store):
    a = store.start_run(CONFIG)
    b = store.start_run(CONFIG)
    store.log_curve(a, [{"step": 1, "loss": 1.0}])
    store.log_curve(a, [{"step": 1, "loss": 2.0}])
    store.log_curve(b, [{"step": 1, "loss": 9.0}])
    assert store.get_curve(a)["loss"][1].tolist() == [2.0]
    assert store.get_curve(b)["loss"][1].tolist() == [9.0]
    assert store.get_curve(a, names=None) and store.get_curve(999) == {}


def test_curve_row_without_step(store):
    rid = store.start_run(CONFIG)
    with pytest.raises(ValueError, match="step"):
        store.log_curve(rid, [{"loss": 1.0}])
    assert store.get_curve(rid) == {}


def test_writes_bump_updated(store):
    rid = store.start_run(CONFIG)
    before = store.get_run(rid)["updated"]
    time.sleep(0.002)
    store.log_curve(rid, [{"step": 0, "loss": 1.0}])
    assert store.get_run(rid)["updated"] > before


# ---------------------------------------------------------------------- events


def test_events(store):
    rid = store.start_run(CONFIG)
    other = store.start_run(CONFIG)
    store.log_event(rid, 5, "nonfinite", "grad norm nan")
    store.log_event(rid, 9, "nonfinite")
    store.log_event(rid, 9, "checkpoint", "saved")
    store.log_event(other, 1, "nonfinite")
    evs = store.events(rid)
    assert [(e["step"], e["kind"], e["detail"]) for e in evs] == [
        (5, "nonfinite", "grad norm nan"), (9, "nonfinite", ""), (9, "checkpoint", "saved")]
    assert all(e["run_id"] == rid for e in evs)
    assert [e["step"] for e in store.events(rid, kind="nonfinite")] == [5, 9]
    assert store.count_events(rid, "nonfinite") == 2
    assert store.count_events(rid, "checkpoint") == 1
    assert store.count_events(rid, "other") == 0
    assert store.events(999) == []


# ----------------------------------------------------------------- checkpoints


def test_checkpoints(store):
    rid = store.start_run(CONFIG)
    assert store.load_checkpoint(rid) is None
    store.save_checkpoint(rid, 100, b"\x00first")
    assert store.load_checkpoint(rid) == (100, b"\x00first")
    payload = bytes(range(256)) * 100
    store.save_checkpoint(rid, 200, payload)
    assert store.load_checkpoint(rid) == (200, payload)
    n = store._conn.execute("SELECT COUNT(*) FROM checkpoints WHERE run_id = ?",
                            (rid,)).fetchone()[0]
    assert n == 1


def test_checkpoint_persists_on_disk(path):
    with Store(path) as s:
        rid = s.start_run(CONFIG)
        s.save_checkpoint(rid, 7, b"state")
    with Store(path) as s:
        assert s.load_checkpoint(rid) == (7, b"state")


def test_final_statuses_constant():
    assert set(FINAL_STATUSES) == {"succeeded", "failed", "diverged", "stopped"}


def _open_worker(paths, queue, barrier):
    try:
        for path in paths:
            barrier.wait(timeout=60)            # every worker opens the same new file at once
            with Store(path) as s:
                s.list_runs()
        queue.put(("ok", None))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc)))


def test_concurrent_creation_of_a_new_store(tmp_path):
    """Processes that create the same new store together all open it: none of them may
    mistake the store being created for another program's database."""
    paths = [str(tmp_path / f"new{i:02d}.sqlite") for i in range(25)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_open_worker, args=(paths, queue, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r for tag, r in results if tag == "error"] == []
    for path in paths:
        with Store(path, read_only=True) as s:
            assert s.list_runs() == []
