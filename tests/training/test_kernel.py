"""Training with the persistent kernel (Triton's interpreter on the CPU): it follows the
exact engine, members of different lengths share an ensemble, and bad combinations
are clear errors."""

import dataclasses

import pytest
import torch
from click.testing import CliRunner

from bptt.cli import main
from bptt.engine import persistent
from bptt.store import Store
from bptt.training import checkpoint as ckpt
from bptt.training import kernel_data
from bptt.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not persistent.available() or not persistent.interpreted(),
                                reason="needs Triton's interpreter (TRITON_INTERPRET=1 before Triton is imported)")


def tiny(**kw):
    """A run that learns something in a few updates: member 0 passes a lenient success
    threshold at a check before the budget is spent and leaves; member 1 does not."""
    base = dict(task="temporal_order", min_length=10, max_length=10, hidden=8, batch_size=16, max_updates=6,
                eval_every=2, check_sequences=32, eval_sequences=32, seeds=[0, 1], data_seed=1,
                record_every=2, checkpoint_every=1000, lr=1.0, method="msgd-c", success_error=0.55)
    base.update(kw)
    return TrainConfig(**base)


def test_persistent_training_follows_the_exact_engine():
    store_e, store_p = Store(":memory:"), Store(":memory:")
    exact = Trainer(tiny(), store_e).run()
    pers = Trainer(tiny(kernel="persistent"), store_p).run()
    statuses = [m.status for m in exact.members]
    assert set(statuses) == {"succeeded", "failed"}                 # the run decides something
    assert any(m.status == "succeeded" and m.updates < 6 for m in exact.members)   # a member retired early
    assert [m.status for m in pers.members] == statuses
    assert [m.updates for m in pers.members] == [m.updates for m in exact.members]
    assert [m.error for m in pers.members] == [m.error for m in exact.members]
    for name, p in exact.model.params.items():
        torch.testing.assert_close(pers.model.params[name], p, rtol=1e-5, atol=1e-6)
    for me, mp in zip(exact.members, pers.members):
        ce, cp = store_e.get_curve(me.run_id), store_p.get_curve(mp.run_id)
        for key in ("loss", "grad_norm"):
            torch.testing.assert_close(torch.tensor(cp[key][1]), torch.tensor(ce[key][1]), rtol=1e-5, atol=1e-6)
    assert store_p.get_run(pers.members[0].run_id)["config"]["kernel"] == "persistent"
    assert "kernel" not in store_e.get_run(exact.members[0].run_id)["config"]     # stored as before


def mixed(seeds, lengths, methods, init="smart_tanh", **kw):
    return TrainConfig(task="temporal_order", hidden=8, batch_size=16, max_updates=4, eval_every=2,
                       check_sequences=16, eval_sequences=16, data_seed=5, record_every=2, lr=0.2,
                       success_error=0.01, kernel="persistent", seeds=seeds, min_length=lengths,
                       max_length=lengths, method=methods, init=init, **kw)


def test_a_mixed_ensemble_trains_each_member_as_alone_at_its_length_and_init():
    runs = [(0, 10, "msgd", "sigmoid"), (1, 16, "msgd-c", "basic_tanh"), (0, 16, "msgd-cr", "smart_tanh")]
    seeds, lengths, methods, inits = map(list, zip(*runs))
    trainer = Trainer(mixed(seeds, lengths, methods, inits))
    assert trainer.model.unit == ("sigmoid", "tanh", "tanh")
    together = trainer.run()
    for e, (seed, length, method, init) in enumerate(runs):
        alone = Trainer(mixed([seed], [length], method, init)).run()
        assert together.members[e].error == alone.members[0].error
        assert together.members[e].status == alone.members[0].status
        for name, p in alone.model.params.items():
            torch.testing.assert_close(together.model.params[name][e], p[0], rtol=1e-6, atol=1e-7)
    t = Trainer(mixed(seeds, lengths, methods, eval_length=12))
    assert t.source.check_lengths([0, 1, 2], None) == [12, 12, 12]       # eval_length, where set
    assert Trainer(mixed(seeds, lengths, methods)).source.check_lengths([2, 0], None) == [16, 10]


def test_a_mixed_length_ensemble_resumes_exactly_from_its_checkpoint():
    cfg = dataclasses.replace(mixed([0, 1], [10, 14], "msgd-c", ["sigmoid", "smart_tanh"]), max_updates=4,
                              eval_every=100)
    saved = {}

    def keep(trainer):
        if trainer.update == 2:
            saved["state"] = ckpt.dumps(trainer.state())
    whole = Trainer(cfg, callback=keep).run()
    resumed = Trainer.from_checkpoint(saved["state"])
    assert resumed.update == 2 and resumed.model.unit == ("sigmoid", "tanh")
    again = resumed.run()
    for name, p in whole.model.params.items():
        torch.testing.assert_close(again.model.params[name], p, rtol=0, atol=0)
    assert [m.error for m in again.members] == [m.error for m in whole.members]


def test_device_sampling_and_screen_agree_between_kernels(monkeypatch):
    """The device path (torch samplers, the device screen) run on the CPU's generator."""
    monkeypatch.setattr(kernel_data, "device_sampling", lambda config: True)
    exact = Trainer(tiny(max_updates=4, eval_every=2)).run()
    pers = Trainer(tiny(max_updates=4, eval_every=2, kernel="persistent")).run()
    assert [m.error for m in pers.members] == [m.error for m in exact.members]
    for name, p in exact.model.params.items():
        torch.testing.assert_close(pers.model.params[name], p, rtol=1e-5, atol=1e-6)
    lengths = Trainer(mixed([0, 1], [10, 20], "msgd")).source.lengths([0, 1])
    assert lengths == [10, 20]
    saved = {}

    def keep(trainer):
        if trainer.update == 2:
            saved["state"] = ckpt.dumps(trainer.state())
    whole = Trainer(tiny(max_updates=4, eval_every=100, kernel="persistent"), callback=keep).run()
    again = Trainer.from_checkpoint(saved["state"]).run()              # the generators' states resume too
    for name, p in whole.model.params.items():
        assert torch.equal(again.model.params[name], p)


@pytest.mark.parametrize("change, message", [
    (dict(min_length=[10, 20], max_length=[10, 20]), "need kernel='persistent'"),
    (dict(init=["sigmoid", "smart_tanh"]), "need kernel='persistent'"),
    (dict(init=["sigmoid", "tanh"], kernel="persistent"), "init"),
    (dict(min_length=[10, 20], max_length=[10, 20], kernel="persistent", seeds=[0, 1, 2]), "entries for 3 seeds"),
    (dict(min_length=[20, 20], max_length=[10, 20], kernel="persistent"), "min_length <= max_length"),
    (dict(hidden=200, kernel="persistent"), "at most 128"),
    (dict(kernel="fused"), "kernel"),
])
def test_bad_combinations_are_value_errors(change, message):
    cfg = dataclasses.replace(tiny(), **change)
    with pytest.raises(ValueError, match=message):
        Trainer(cfg)


def test_the_persistent_kernel_needs_triton_and_cuda(monkeypatch):
    monkeypatch.setattr(persistent, "interpreted", lambda: False)
    with pytest.raises(ValueError, match="runs on CUDA devices"):
        Trainer(tiny(kernel="persistent"))
    monkeypatch.setattr(persistent, "available", lambda: False)
    with pytest.raises(ValueError, match="needs Triton"):
        Trainer(tiny(kernel="persistent"))
    Trainer(tiny())                                                    # the exact engine needs neither


def _cli(args, tmp_path):
    res = CliRunner().invoke(main, args + ["--store", str(tmp_path / "s.sqlite"), "--no-progress"])
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    return res.output


def test_cli_refuses_bad_engine_combinations(tmp_path, monkeypatch):
    out = _cli(["train", "--kernel", "fused"], tmp_path)
    assert "fused" in out
    out = _cli(["reproduce", "figure7", "--device", "nowhere"], tmp_path)
    assert "unknown device" in out
    if not torch.cuda.is_available():
        out = _cli(["reproduce", "figure7", "--device", "cuda"], tmp_path)
        assert "no CUDA device" in out
    monkeypatch.setattr(persistent, "interpreted", lambda: False)
    out = _cli(["train", "--kernel", "persistent", "--max-updates", "2"], tmp_path)
    assert "runs on CUDA devices" in out
    out = _cli(["reproduce", "figure7", "--kernel", "persistent"], tmp_path)
    assert "--device cuda" in out
    monkeypatch.setattr(persistent, "available", lambda: False)
    out = _cli(["train", "--kernel", "persistent", "--max-updates", "2"], tmp_path)
    assert "needs Triton" in out


def test_cli_trains_with_the_persistent_kernel(tmp_path):
    db = tmp_path / "s.sqlite"
    res = CliRunner().invoke(main, ["train", "--kernel", "persistent", "--length", "10", "--hidden", "8",
                                    "--max-updates", "2", "--eval-every", "100", "--eval-sequences", "16",
                                    "--store", str(db), "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = Store(db).list_runs()[0]
    assert run["config"]["kernel"] == "persistent" and run["status"] == "failed"


CUDA_PROGRAM = r'''
import sys, tempfile, torch
from bptt.experiments.reproduce import reproduce
from bptt.store import Store
from bptt.training.trainer import TrainConfig, Trainer

base = dict(task="temporal_order", min_length=50, max_length=50, hidden=50, batch_size=20, max_updates=20,
            eval_every=10, check_sequences=200, eval_sequences=1000, seeds=[0, 1, 2], data_seed=1,
            lr=0.01, method="msgd-cr", alpha=4.0, device="cuda", record_every=5)
exact = Trainer(TrainConfig(**base)).run()
pers = Trainer(TrainConfig(**base, kernel="persistent")).run()
assert [m.status for m in exact.members] == [m.status for m in pers.members]
for k, p in exact.model.params.items():
    err = float((pers.model.params[k] - p).abs().max())
    assert err < 1e-4, (k, err)
with tempfile.TemporaryDirectory() as d:
    out = reproduce("figure7", "smoke", store=d + "/s.sqlite", out_dir=d + "/r", device="cuda", progress=False,
                    echo=lambda s: None)
    s = out["summary"]
    assert s.settled == s.runs == 45, s
    packs = {r["metrics"].get("pack") for r in Store(d + "/s.sqlite").list_runs()}
    assert len(packs) == 1, packs
print("ok")
'''


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_compiled_kernel_trains_as_the_exact_engine_on_cuda(tmp_path):
    """On a GPU (compiled, not interpreted): the same updates as the exact engine on the
    device's data, and the Figure 7 smoke sweep in one ensemble."""
    import os
    import subprocess
    import sys

    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", CUDA_PROGRAM], capture_output=True, text=True, timeout=900,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout[-2000:] + proc.stderr[-4000:]
