"""Martens' conjugate gradient: solutions, the stopping rule, saved iterates, backtracking."""

import math

import pytest
import torch

from bptt.optim import cg


def spd_problem(E=3, P=12, seed=0, condition=50.0):
    gen = torch.Generator().manual_seed(seed)
    mats = []
    for _ in range(E):
        Q, _ = torch.linalg.qr(torch.randn(P, P, dtype=torch.float64, generator=gen))
        eig = torch.logspace(0, math.log10(condition), P, dtype=torch.float64)
        mats.append(Q @ torch.diag(eig) @ Q.T)
    A = torch.stack(mats)
    b = torch.randn(E, P, dtype=torch.float64, generator=gen)
    apply_A = lambda v: torch.einsum("epq,eq->ep", A, v)  # noqa: E731
    return A, b, apply_A


@pytest.mark.parametrize("precondition", [False, True])
def test_solves_spd_system(precondition):
    A, b, apply_A = spd_problem()
    M = torch.diagonal(A, dim1=1, dim2=2) if precondition else None
    res = cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), preconditioner=M, max_iters=100,
                                tolerance=1e-12)
    exact = -torch.linalg.solve(A, b)
    torch.testing.assert_close(res.x, exact, rtol=1e-8, atol=1e-8)
    phi_exact = 0.5 * torch.einsum("ep,ep->e", exact, b)
    torch.testing.assert_close(res.phi, phi_exact, rtol=1e-8, atol=1e-10)


def test_warm_start_and_inactive_members():
    A, b, apply_A = spd_problem(seed=1)
    exact = -torch.linalg.solve(A, b)
    x0 = exact + 0.1 * torch.randn_like(exact)
    active = torch.tensor([True, False, True])
    res = cg.conjugate_gradient(apply_A, b, x0, max_iters=100, tolerance=1e-12, active=active)
    torch.testing.assert_close(res.x[active], exact[active], rtol=1e-8, atol=1e-8)
    assert torch.equal(res.x[1], x0[1]) and res.iterations[1] == 0


def test_members_stop_on_their_own():
    """Each member's iterate equals what a run of that member alone gives."""
    A0, b0, _ = spd_problem(E=1, P=30, seed=2, condition=3.0)
    A1, b1, _ = spd_problem(E=1, P=30, seed=5, condition=300.0)
    A, b = torch.cat([A0, A1]), torch.cat([b0, b1])
    # products member by member, so that both runs round alike (CG amplifies rounding differences)
    res = cg.conjugate_gradient(lambda v: torch.stack([A[e] @ v[e] for e in range(2)]), b,
                                torch.zeros_like(b), max_iters=60, tolerance=5e-4)
    assert res.iterations[0] < res.iterations[1]              # the easy member stops first
    for e in range(2):
        alone = cg.conjugate_gradient(lambda v: (A[e] @ v[0])[None], b[e:e + 1],
                                      torch.zeros_like(b[e:e + 1]), max_iters=60, tolerance=5e-4)
        assert res.iterations[e] == alone.iterations[0] and res.reason[e] == alone.reason[0]
        torch.testing.assert_close(res.x[e], alone.x[0], rtol=1e-12, atol=1e-14)


def test_progress_gap():
    assert cg.progress_gap(1) == 10 and cg.progress_gap(100) == 10
    assert cg.progress_gap(101) == 11 and cg.progress_gap(200) == 20 and cg.progress_gap(250) == 25


def test_stopping_rule_on_constructed_sequences():
    eps = 5e-4
    flat = [torch.tensor([-1.0])] * 12
    assert not cg.progress_stop(flat, 10, eps).item()        # i = k: never before i > k
    assert cg.progress_stop(flat, 11, eps).item()            # no progress over k = 10 iterations
    positive = [torch.tensor([1.0])] * 12
    assert not cg.progress_stop(positive, 11, eps).item()    # φ ≥ 0 never stops
    # at i = 50, k = 10: relative progress just below and just above k·ε
    for progress, stops in ((0.99 * 10 * eps, True), (1.01 * 10 * eps, False)):
        phis = [torch.tensor([-1.0])] * 51
        phis[50] = torch.tensor([-1.0 / (1 - progress)])     # (φ50 − φ40) / φ50 = progress
        assert cg.progress_stop(phis, 50, eps).item() is stops
    # at i = 200 the gap is 20: φ(x_180) counts, φ(x_190) does not
    phis = [torch.tensor([-1.0])] * 181 + [torch.tensor([-2.0])] * 20
    assert not cg.progress_stop(phis, 200, eps).item()       # halved since i − 20
    phis = [torch.tensor([-1.0])] * 190 + [torch.tensor([-2.0])] * 11
    assert not cg.progress_stop(phis, 200, eps).item()
    phis = [torch.tensor([-2.0])] * 201
    assert cg.progress_stop(phis, 200, eps).item()


def test_cg_stops_by_the_rule():
    """A long, slow problem stops early, at the first iteration the rule allows."""
    A, b, apply_A = spd_problem(E=1, P=200, seed=3, condition=1e3)
    res = cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), max_iters=250, tolerance=5e-4)
    n = int(res.iterations[0])
    assert res.reason[0] == cg.PROGRESS and n < 250
    # replay φ and check the rule fires at n and not before
    full = cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), max_iters=n, tolerance=1e-300)
    phis = [torch.zeros(1)]
    for i in range(1, n + 1):
        phis.append(cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), max_iters=i, tolerance=1e-300).phi)
    fired = [i for i in range(1, n + 1) if cg.progress_stop(phis, i, 5e-4).item()]
    assert fired == [n]
    torch.testing.assert_close(full.x, res.x)


def test_save_schedule():
    sched = cg.save_schedule(250, 1.3)
    expected = sorted({math.ceil(1.3 ** j) for j in range(40) if math.ceil(1.3 ** j) <= 250})
    assert sched == expected
    assert sched[:8] == [1, 2, 3, 4, 5, 7, 9, 11]
    A, b, apply_A = spd_problem(E=1, P=40, seed=4, condition=1e5)
    res = cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), max_iters=30, tolerance=1e-300)
    assert [i for i, _ in res.saved] == [i for i in sched if i <= 30]
    for i, x_i in res.saved:
        again = cg.conjugate_gradient(apply_A, b, torch.zeros_like(b), max_iters=i, tolerance=1e-300)
        torch.testing.assert_close(x_i, again.x)


def constructed_result(values_by_iter, final_iters):
    """A CGResult whose iterate at iteration i of member e is the constant i (P = 1)."""
    saved = [(i, torch.full((len(final_iters), 1), float(i))) for i in values_by_iter]
    final = torch.tensor([[float(n)] for n in final_iters])
    saved = [(i, torch.where(torch.tensor(final_iters)[:, None] < i, final, x)) for i, x in saved]
    return cg.CGResult(x=final, iterations=torch.tensor(final_iters), phi=torch.zeros(len(final_iters)),
                       saved=saved, reason=torch.zeros(len(final_iters), dtype=torch.long))


def test_backtracking_walks_back_while_the_objective_falls():
    # member 0: f by iteration {1: 5, 2: 1, 3: 3, 5: 2, 7: 2.5, final 9: 4}; walking back from 9:
    # 7 (2.5 < 4) → 5 (2 < 2.5) → 3 (3 > 2): stop at 5, although 2 is better still.
    # member 1 ends at iteration 4: its candidates are 3, 2, 1 (not 5, 7); f = {4: 9, 3: 8, 2: 5, 1: 6}:
    # walks back to 2 and stops there.
    f0 = {1: 5.0, 2: 1.0, 3: 3.0, 5: 2.0, 7: 2.5, 9: 4.0}
    res = constructed_result([1, 2, 3, 5, 7], [9, 4])
    calls = []

    def objective(p):
        calls.append(p[:, 0].tolist())
        it = p[:, 0].round().long().tolist()
        return torch.tensor([f0[it[0]], {1: 6.0, 2: 5.0, 3: 8.0, 4: 9.0}.get(it[1], 9.0)])

    best, f_best, chosen = cg.backtrack(res, objective)
    assert chosen.tolist() == [5, 2]
    assert best[:, 0].tolist() == [5.0, 2.0]
    assert f_best.tolist() == [2.0, 5.0]
    assert calls[0] == [9.0, 4.0]                              # the final iterates first


def test_backtracking_skips_nonfinite():
    res = constructed_result([1, 2], [3])
    best, f_best, chosen = cg.backtrack(res, lambda p: torch.where(p[:, 0] > 2, torch.tensor([math.nan]),
                                                                   3.0 - p[:, 0]))
    assert chosen.tolist() == [2] and f_best.tolist() == [1.0]


def test_negative_curvature_stops_member():
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    A = torch.stack([-torch.eye(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)])
    res = cg.conjugate_gradient(lambda v: torch.einsum("epq,eq->ep", A, v), b, torch.zeros_like(b),
                                max_iters=20)
    assert res.reason[0] == cg.NEGATIVE_CURVATURE and res.iterations[0] == 0
    assert torch.equal(res.x[0], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(res.x[1], -b[1])
