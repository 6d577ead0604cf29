"""Dropout on the non-recurrent connections (Zaremba et al. 2014) in Table 1's training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bptt.experiments.table1 import NaturalTrainer, train_natural
from bptt.store import Store

from table1_toys import small, toy_music
from test_table1_training import TIMINGS, _interrupt_at


def test_no_dropout_keeps_the_configuration_and_its_key():
    cfg = small()
    assert cfg.as_dict()["dropout"] == 0.0
    assert cfg.group == dataclasses.replace(cfg, dropout=0.0).group
    keyed = {k: v for k, v in cfg.as_dict().items() if k != "dropout"}
    from bptt.store import config_key
    from bptt.experiments.table1.protocol import LEGACY_CHOICES
    for k, v in LEGACY_CHOICES.items():
        if keyed.get(k) == v:
            keyed.pop(k)
    assert cfg.group == config_key(keyed)                          # as hashed before dropout existed
    with_dropout = dataclasses.replace(cfg, dropout=0.25).validate()
    assert with_dropout.as_dict()["dropout"] == 0.25 and with_dropout.group != cfg.group
    with pytest.raises(ValueError, match="dropout"):
        dataclasses.replace(cfg, dropout=1.0).validate()


def test_a_step_with_dropout_is_the_engine_pass_with_the_trainers_masks():
    cfg = small(dropout=0.3, threshold=1e6)
    trainer = NaturalTrainer(cfg, toy_music(), Store(":memory:"))
    batch = trainer.next_batch(trainer.loop)
    state = trainer.dropout_rng.get_state()
    g = torch.Generator()
    g.set_state(state)
    alpha = trainer.loop._alpha_tensor(trainer.loop._alpha_values(1))
    ref = trainer.model.forward_backward(batch.x, batch.y, alpha=alpha, omega="squared", h0=batch.h0,
                                         mask=batch.mask, dropout=0.3, generator=g)
    plain = trainer.model.forward_backward(batch.x, batch.y, alpha=alpha, omega="squared", h0=batch.h0,
                                           mask=batch.mask)
    out = trainer.loop.step(batch)
    torch.testing.assert_close(out.loss, ref.loss, rtol=0, atol=0)
    assert not torch.allclose(out.loss, plain.loss)
    assert not torch.equal(trainer.dropout_rng.get_state(), state)     # fresh masks next time


def test_training_with_dropout_resumes_exactly(monkeypatch):
    src = toy_music()
    cfg = small(max_epochs=2, window=12, batch_size=2, dropout=0.2)
    straight_store = Store(":memory:")
    straight = train_natural(cfg, straight_store, source=src)
    without = train_natural(dataclasses.replace(cfg, dropout=0.0), Store(":memory:"), source=src)
    assert [m.valid for m in straight.members] != [m.valid for m in without.members]
    store = Store(":memory:")
    restore = _interrupt_at(monkeypatch, 9, RuntimeError)
    with pytest.raises(RuntimeError):
        train_natural(cfg, store, source=src)
    restore()
    resumed = train_natural(cfg, store, source=src)
    for a, b in zip(straight.members, resumed.members):
        assert (a.train, a.valid, a.test, a.updates) == (b.train, b.valid, b.test, b.updates)
        want, got = straight_store.get_curve(a.run_id), store.get_curve(b.run_id)
        for name in sorted(set(want) - TIMINGS):
            np.testing.assert_array_equal(want[name][1], got[name][1], err_msg=name)
