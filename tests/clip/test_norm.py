"""Algorithm 1, element-wise clipping and the non-finite guard."""

import math

import pytest
import torch

from bptt.clip import clip_by_global_norm, clip_elementwise, global_norm
from bptt.optim.sgd import (NORM_LIMIT, SHRINK,
                             nonfinite, sgd_update)


def grads_with_norms(norms):
    g = torch.Generator().manual_seed(0)
    out = {"W_rec": torch.randn(len(norms), 4, 4, generator=g, dtype=torch.float64),
           "b": torch.randn(len(norms), 4, generator=g, dtype=torch.float64)}
    n = global_norm(out)
    scale = torch.tensor(norms, dtype=torch.float64) / n
    return {k: v * scale.reshape(-1, *([1] * (v.dim() - 1))) for k, v in out.items()}


def test_below_at_and_above_threshold():
    grads = grads_with_norms([0.5, 1.0, 3.0])
    clipped, flag = clip_by_global_norm(grads, 1.0)
    assert flag.tolist() == [False, True, True]          # "at or above" rescales
    new = global_norm(clipped)
    assert torch.allclose(new, torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64))
    # direction is kept
    for k in grads:
        cos = torch.nn.functional.cosine_similarity(grads[k][2].flatten(), clipped[k][2].flatten(), dim=0)
        assert cos > 1 - 1e-12
    assert torch.equal(clipped["W_rec"][0], grads["W_rec"][0])


def test_per_member_thresholds():
    grads = grads_with_norms([2.0, 2.0, 2.0])
    clipped, flag = clip_by_global_norm(grads, torch.tensor([1.0, 2.5, 0.1]))
    assert flag.tolist() == [True, False, True]
    assert torch.allclose(global_norm(clipped), torch.tensor([1.0, 2.0, 0.1], dtype=torch.float64))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_threshold_must_be_positive(bad):
    with pytest.raises(ValueError, match="threshold"):
        clip_by_global_norm(grads_with_norms([1.0]), bad)
    with pytest.raises(ValueError, match="threshold"):
        clip_elementwise(grads_with_norms([1.0]), bad)


def test_nonfinite_norm_is_left_to_the_guard():
    grads = grads_with_norms([1.0, 5.0])
    grads["b"][0, 0] = float("nan")
    clipped, flag = clip_by_global_norm(grads, 1.0)
    assert flag.tolist() == [False, True]
    assert torch.isnan(clipped["b"][0, 0])
    norms = torch.tensor([float("nan"), float("inf"), -1.0, 2 * NORM_LIMIT, 3.0])
    assert nonfinite(norms).tolist() == [True, True, True, True, False]


def test_elementwise():
    grads = {"W_rec": torch.tensor([[[0.5, -3.0], [2.0, 0.1]], [[0.1, 0.2], [0.3, -0.4]]])}
    clipped, flag = clip_elementwise(grads, 1.0)
    assert torch.equal(clipped["W_rec"][0], torch.tensor([[0.5, -1.0], [1.0, 0.1]]))
    assert flag.tolist() == [True, False]


def test_sgd_update_and_guard():
    params = {"W_rec": torch.ones(2, 3, 3), "W_in": torch.ones(2, 2, 3)}
    grads = {"W_rec": torch.full((2, 3, 3), 2.0), "W_in": torch.full((2, 2, 3), 2.0)}
    grads["W_in"][1, 0, 0] = math.nan
    lr = 0.1
    sgd_update(params, grads, lr, bad=torch.tensor([False, True]))
    assert torch.allclose(params["W_rec"][0], torch.full((3, 3), 1 - lr * 2))
    assert torch.allclose(params["W_in"][0], torch.full((2, 3), 1 - lr * 2))
    # member 1: update dropped, W_rec shrunk by lr * 0.02 * W_rec, the rest untouched
    assert torch.allclose(params["W_rec"][1], torch.full((3, 3), 1 - lr * SHRINK))
    assert torch.equal(params["W_in"][1], torch.ones(2, 3))
