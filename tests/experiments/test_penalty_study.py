"""The L2 study of §3.3: a strong L2 on W_rec drives ρ below 1 and the network forgets."""

import csv

import pytest

from bptt.experiments.penalties import penalty_study, plot_penalty_study


def test_strong_l2_pins_rho_below_one_and_keeps_the_error_at_chance(tmp_path):
    study = penalty_study(l2=(0.0, 1.0), lengths=(10,), seeds=(0,), updates=200, check_every=50,
                          check_sequences=100, hidden=8)
    free, pinned = study.curves
    assert (free.l2, pinned.l2) == (0.0, 1.0)
    assert pinned.step == [50, 100, 150, 200]
    # one step of lr·λ₂ = 0.05 shrinks W_rec by 5%: 200 updates leave under 1e-3 of it
    assert pinned.rho[-1] < 0.01 < free.rho[-1]
    assert all(e > 0.5 for e in pinned.error)                     # 4 classes: chance is 0.75
    paths = plot_penalty_study(study, tmp_path / "pen")
    assert paths[0].stat().st_size > 1000
    rows = list(csv.DictReader(open(paths[-1])))
    assert len(rows) == len(free.step) + len(pinned.step)
    assert {float(r["l2"]) for r in rows} == {0.0, 1.0}


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="l2"):
        penalty_study(l2=(0.0, -1.0))
    with pytest.raises(ValueError, match="length"):
        penalty_study(lengths=())
