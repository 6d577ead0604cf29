"""The success screen passes a network at the success threshold with the promised probability."""

import math

import numpy as np
import pytest

from bptt.training.screen import miss_probability, pass_probability, screen_threshold


def cdf(k, n, q):
    return sum(math.comb(n, i) * q ** i * (1 - q) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize("n", [1, 50, 200, 500, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.99, 0.999])
def test_the_threshold_is_the_least_that_keeps_the_promise(n, confidence):
    k = screen_threshold(n, 0.01, confidence)
    assert cdf(k, n, 0.01) >= confidence - 1e-12
    assert k == 0 or cdf(k - 1, n, 0.01) < confidence
    assert miss_probability(n, k) == pytest.approx(1 - cdf(k, n, 0.01), abs=1e-12)
    assert miss_probability(n, k) <= 1 - confidence + 1e-12


def test_networks_below_the_threshold_pass_more_often_and_a_simulation_agrees():
    n = 500
    k = screen_threshold(n)
    rates = [pass_probability(n, k, q) for q in (0.0, 0.002, 0.005, 0.01, 0.02, 0.05)]
    assert rates == sorted(rates, reverse=True) and rates[0] == 1.0 and rates[3] >= 0.99
    rng = np.random.default_rng(0)
    wrong = rng.binomial(n, 0.01, size=200_000)
    assert np.mean(wrong <= k) == pytest.approx(rates[3], abs=0.002)


def test_the_old_screen_missed_half_of_the_networks_it_should_pass():
    # 200 sequences, at most one wrong: a network with 0.8% true error passes about half the time.
    assert pass_probability(200, 1, 0.008) == pytest.approx(0.524, abs=0.001)


@pytest.mark.parametrize("kw", [dict(n=0), dict(n=2.5), dict(n=10, p=0.0), dict(n=10, p=float("nan")),
                                dict(n=10, confidence=1.0), dict(n=10, confidence=-0.1)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        screen_threshold(**kw)


def test_the_rule_of_the_tasks_derives_its_threshold_and_rejects_exactly():
    from bptt.training.screen import SCREEN_CONFIDENCE, screen_rule

    rule = screen_rule(500, 10_000, 0.01)
    assert rule.k == screen_threshold(500, 0.01, SCREEN_CONFIDENCE)
    assert rule.miss == pytest.approx(miss_probability(500, rule.k)) and rule.miss <= 0.01
    assert rule.passes_screen(rule.k) and not rule.passes_screen(rule.k + 1)
    # success: fewer than 1% of 10,000 wrong; so 100 wrong settle the failure and the confirmation may stop
    assert rule.reject_at == 100
    assert rule.passes(99, 10_000) and not rule.passes(100, 10_000)
    assert f"at most {rule.k} wrong" in rule.describe()


def test_strict_is_the_reference_codes_rule_no_error_at_all():
    from bptt.training.screen import screen_rule

    rule = screen_rule(200, 10_000, 0.01, strict=True)
    assert rule.k == 0 and rule.reject_at == 1 and rule.miss == 0.0
    assert rule.passes(0, 10_000) and not rule.passes(1, 10_000)


def test_the_confirmation_stops_once_every_member_has_failed():
    from bptt.training.synthetic import Trainer
    from bptt.training.config import TrainConfig

    cfg = TrainConfig(min_length=20, max_length=20, hidden=8, seeds=[0, 1], check_sequences=50)
    trainer = Trainer(cfg)                                  # untrained: about 75% of the sequences wrong
    wrong, done = trainer.wrong_counts(10_000, reject_at=trainer.screen.reject_at)
    assert done == 1000 and bool((wrong >= 100).all())
    wrong, done = trainer.wrong_counts(3000)
    assert done == 3000
