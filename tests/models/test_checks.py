"""What a user hands to ElmanRNN's passes is checked, each error naming the argument."""

import pytest
import torch

from bptt.models import ElmanRNN


def model(output="last_softmax", n_out=3, E=2):
    return ElmanRNN(4, 5, n_out, output=output, init="basic_tanh", ensemble=E, dtype=torch.float64)


def good(output, T=6, B=3, n_out=3):
    x = torch.randn(T, B, 4, dtype=torch.float64)
    y = {"last_softmax": torch.randint(0, n_out, (B,)), "softmax": torch.randint(0, n_out, (T, B)),
         "last_linear": torch.randn(B, n_out, dtype=torch.float64),
         "sigmoid": torch.rand(T, B, n_out, dtype=torch.float64).round()}[output]
    return x, y


@pytest.mark.parametrize("output", ["last_softmax", "softmax", "last_linear", "sigmoid"])
def test_good_batches_pass_and_shared_or_member_targets_are_accepted(output):
    m = model(output)
    x, y = good(output)
    m.forward_backward(x, y, alpha=0.5)
    per_member = torch.stack([y, y], dim=1 if output in ("softmax", "sigmoid") else 0)    # the E axis
    m.forward_backward(x, per_member, alpha=torch.tensor([0.0, 1.0], dtype=torch.float64))
    m.evaluate(x, y, tolerance=0.1)


@pytest.mark.parametrize("output, bad, match", [
    ("last_softmax", torch.zeros(6, 3, dtype=torch.long), r"y for a 'last_softmax' output must be class indices of shape \[3\] or \[2, 3\]"),
    ("last_softmax", torch.zeros(3), "torch.int64"),
    ("last_softmax", torch.tensor([0, 1, 3]), "from 0 to 3; the model has 3 classes"),
    ("last_softmax", torch.tensor([0, -1, 2]), "from -1 to 2"),
    ("softmax", torch.zeros(3, dtype=torch.long), r"\[6, 3\] or \[6, 2, 3\]"),
    ("last_linear", torch.zeros(3, 2, dtype=torch.float64), r"float targets of shape \[3, 3\]"),
    ("last_linear", torch.zeros(3, 3, dtype=torch.long), "floating point"),
    ("sigmoid", torch.zeros(6, 3, 3, dtype=torch.long), "floating point"),
])
def test_wrong_targets_name_the_argument_and_what_was_expected(output, bad, match):
    m = model(output)
    x, _ = good(output)
    with pytest.raises(ValueError, match=match):
        m.forward_backward(x, bad)
    with pytest.raises(ValueError, match=match):
        m.evaluate(x, bad, tolerance=0.1)


@pytest.mark.parametrize("alpha, match", [
    (-1.0, "finite and >= 0"), (float("nan"), "finite and >= 0"), (float("inf"), "finite and >= 0"),
    (torch.tensor([0.5, float("nan")]), "finite and >= 0"), (torch.tensor([0.5, -0.1]), "finite and >= 0"),
    (torch.tensor([1.0, 2.0, 3.0]), r"shape \[\] or \[2\]"), ("a lot", "float or a tensor"),
    (torch.empty(2, device="meta"), "meta tensor"),
])
def test_bad_alpha_is_refused(alpha, match):
    m = model()
    x, y = good("last_softmax")
    with pytest.raises(ValueError, match=match):
        m.forward_backward(x, y, alpha=alpha)


def test_bad_inputs_state_and_mask_are_refused():
    m = model("sigmoid")
    x, y = good("sigmoid")
    with pytest.raises(ValueError, match="meta tensor"):
        m.forward_backward(torch.empty(6, 3, 4, device="meta"), y)
    with pytest.raises(ValueError, match="floating point"):
        m.forward_backward(x.long(), y)
    with pytest.raises(ValueError, match=r"h0 must be \[E, B, H\] = \[2, 3, 5\]"):
        m.forward_backward(x, y, h0=torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"mask must be \[T, B\] = \[6, 3\]"):
        m.forward_backward(x, y, mask=torch.ones(3, 6))
    with pytest.raises(ValueError, match="0 \\(padding\\) or 1"):
        m.forward_backward(x, y, mask=torch.full((6, 3), 0.5))
    with pytest.raises(ValueError, match="per-step outputs"):
        model("last_softmax").forward_backward(*good("last_softmax"), mask=torch.ones(6, 3))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        m.forward_backward(x.numpy(), y)
