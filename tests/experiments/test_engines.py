"""Engine selection of the reproductions, and packing runs of different lengths into one
ensemble with the persistent kernel."""

import pytest

from bptt.engine import persistent
from bptt.experiments import engines
from bptt.experiments.execute import _train_config
from bptt.experiments.experiment import default_sweep_name
from bptt.experiments.registry import get
from bptt.experiments.sweep import RunSpec, Sweep, pack


def specs(kernel=None, lengths=(20, 30), seeds=(0, 1), hidden=(8,)):
    engine = {} if kernel is None else {"kernel": kernel}
    return [RunSpec({"task": "temporal_order", "min_length": L, "max_length": L, "hidden": h, "method": m,
                     "seed": s, "max_updates": 10, **engine}, {"length": L, "method": m, "seed": s})
            for L in lengths for h in hidden for m in ("msgd", "msgd-cr") for s in seeds]


def lengths_of(sweep, p):
    return sorted({sweep.configs[i]["min_length"] for i in p.members})


def test_different_lengths_share_a_pack_only_with_the_persistent_kernel():
    exact = Sweep("e", specs())
    assert [lengths_of(exact, p) for p in pack(exact)] == [[30], [20]]
    pers = Sweep("p", specs("persistent"))
    packs = pack(pers)
    assert len(packs) == 1 and lengths_of(pers, packs[0]) == [20, 30] and len(packs[0].members) == 8
    assert packs[0].cost == sum(10 * pers.configs[i]["min_length"] for i in packs[0].members)
    cfg = _train_config([pers.configs[i] for i in packs[0].members], 7)
    assert cfg.kernel == "persistent" and cfg.member_lengths
    assert sorted(zip(cfg.seeds, cfg.min_length, cfg.method)) == sorted(
        (pers.configs[i]["seed"], pers.configs[i]["min_length"], pers.configs[i]["method"]) for i in packs[0].members)
    cfg.validate()


def test_runs_that_differ_in_shape_stay_apart_with_the_persistent_kernel():
    pers = Sweep("p", specs("persistent", hidden=(8, 16)))
    packs = pack(pers)
    assert len(packs) == 2
    assert all(len({pers.configs[i]["hidden"] for i in p.members}) == 1 for p in packs)
    mixed = Sweep("m", specs("persistent", lengths=(20,)) + specs(lengths=(30,)))
    assert len(pack(mixed)) == 2                        # an exact run never joins a persistent pack


def test_figure7_packs_into_one_ensemble_with_the_persistent_kernel():
    exp = get("figure7")
    exact = exp.sweep("full")
    assert len(pack(exact)) == 15 and exact.name == "figure7-full"
    pers = exp.sweep("full", device="cpu", kernel="persistent")
    packs = pack(pers)
    assert pers.name == "figure7-full-persistent" and len(packs) == 1 and len(packs[0].members) == 225
    assert lengths_of(pers, packs[0]) == [50, 100, 150, 200, 250]
    assert {pers.configs[i]["init"] for i in packs[0].members} == {"sigmoid", "basic_tanh", "smart_tanh"}
    cfg = _train_config([pers.configs[i] for i in packs[0].members], 7)
    assert cfg.mixed_networks and cfg.member_lengths and len(cfg.seeds) == 225
    cfg.validate()
    assert exact.keys[0] not in pers.keys                        # other engines, other runs


def test_default_sweep_names_name_the_engine():
    assert default_sweep_name("figure7", "full") == "figure7-full"
    assert default_sweep_name("figure7", "full", "cuda", "persistent") == "figure7-full-cuda-persistent"
    assert default_sweep_name("figure7", "quick", "cuda:1", "exact") == "figure7-quick-cuda"


def test_choose_kernel(monkeypatch):
    monkeypatch.setattr(persistent, "available", lambda: True)
    monkeypatch.setattr(persistent, "interpreted", lambda: False)
    assert engines.choose_kernel("cpu") == ("exact", None)
    assert engines.choose_kernel("cuda") == ("persistent", None)
    assert engines.choose_kernel("cuda", "exact") == ("exact", None)
    with pytest.raises(ValueError, match="--device cuda"):
        engines.choose_kernel("cpu", "persistent")
    with pytest.raises(ValueError, match="unknown kernel"):
        engines.choose_kernel("cuda", "fused")
    monkeypatch.setattr(persistent, "available", lambda: False)
    kernel, note = engines.choose_kernel("cuda")
    assert kernel == "exact" and "CUDA graphs" in note
    with pytest.raises(ValueError, match="needs Triton"):
        engines.choose_kernel("cuda", "persistent")


def test_check_device():
    assert engines.check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        engines.check_device("nowhere")
