"""Table 1's protocol: the paper's settings, the budgets, the configuration's validation."""

from __future__ import annotations

import pytest

from bptt.experiments.table1 import DATASETS, PAPER_TABLE1, NaturalConfig, protocol
from bptt.methods import METHODS, Method


def test_protocol_holds_the_papers_settings():
    for name in ("piano_midi", "nottingham"):
        c = protocol(name, "full")
        assert (c.hidden, c.unit, c.window, c.lr, c.threshold, c.alpha0, c.alpha_schedule) == \
            (300, "sigmoid", 200, 1.0, 8.0, 0.5, "inverse")
        assert c.halve_lr_on_rise and c.bias and not c.summed_cost
    c = protocol("musedata", "full")
    assert (c.hidden, c.lr, c.alpha0, c.threshold) == (400, 0.5, 0.1, 8.0)
    for name, ahead in (("ptb_1step", 1), ("ptb_5step", 5)):
        c = protocol(name, "full")
        assert (c.hidden, c.bias, c.threshold, c.summed_cost, c.ahead) == (500, False, 45.0, True, ahead)
        assert [c.method_lr(m) for m in METHODS] == [0.001, 0.01, 0.05]
        assert c.method_threshold("msgd") is None and c.method_alpha0("msgd-c") == 0.0
    assert protocol("ptb_1step", "quick").hidden == 128
    assert protocol("nottingham", "quick").hidden == 300
    assert set(PAPER_TABLE1) == set(DATASETS)
    assert PAPER_TABLE1["nottingham"]["msgd-cr"] == (2.95, 3.36)
    assert PAPER_TABLE1["ptb_5step"]["msgd"] is None
    for bad in (dict(dataset="mnist"), dict(budget="huge")):
        with pytest.raises(ValueError):
            protocol(**({"dataset": "nottingham"} | bad))
    with pytest.raises(ValueError, match="learning rate"):
        protocol("nottingham", "full", lr=0.0)
    with pytest.raises(ValueError, match="methods"):
        protocol("nottingham", "full", methods=("msgd", "adam"))
    a, b = protocol("nottingham", "full"), protocol("nottingham", "full", seed=1)
    assert a.group != b.group and a.group == protocol("nottingham", "full").group


def test_each_methods_threshold_and_alpha_follow_what_it_does():
    c = protocol("nottingham", "full", threshold=3.0, alpha0=0.25)
    for m in METHODS:
        assert (c.method_threshold(m) is not None) == m.clips
        assert c.method_threshold(m) in (None, 3.0)
        assert (c.method_alpha0(m) > 0) == m.regularizes
        assert c.method_alpha0(m) in (0.0, 0.25)


def test_methods_given_by_name_become_methods_and_are_stored_as_plain_names():
    c = protocol("nottingham", "full", methods=["msgd-cr", "msgd"])
    assert c.methods == (Method.MSGD_CR, Method.MSGD)
    assert all(type(m) is Method for m in c.methods)
    stored = c.as_dict()["methods"]
    assert stored == ["msgd-cr", "msgd"] and all(type(m) is str for m in stored)
    member = c.member(Method.MSGD_CR)
    assert type(member["method"]) is str and member["method"] == "msgd-cr"
    assert member["alpha0"] == c.alpha0 and member["group"] == c.group
    # the same ensemble whether its methods are named by strings or by enum members
    assert c.group == protocol("nottingham", "full", methods=(Method.MSGD_CR, Method.MSGD)).group
    # a configuration rebuilt from its stored form is the same configuration
    assert NaturalConfig(**c.as_dict()).validate().group == c.group
    with pytest.raises(ValueError, match="distinct"):
        protocol("nottingham", "full", methods=("msgd", "msgd"))
    with pytest.raises(ValueError, match="methods"):
        protocol("nottingham", "full", methods=())
