"""The CUDA-graph replay of the engine pass gives the plain pass's numbers."""

import pytest
import torch

import bptt
from bptt.engine.graphs import GraphedPass
from bptt.optim.sgd import sgd_update

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_graph_option_is_ignored_on_the_cpu():
    task = bptt.tasks.get("temporal_order", seed=0)
    x, y = task.sample(batch_size=4, length=15)
    model = bptt.ElmanRNN(task.n_in, 8, task.n_out, ensemble=2, output=task.output, seed=0)
    a = model.forward_backward(x, y, alpha=2.0, cuda_graph=True)
    b = model.forward_backward(x, y, alpha=2.0)
    assert model._graphs is None
    for k in a.grads:
        assert torch.equal(a.grads[k], b.grads[k])
    with pytest.raises(ValueError, match="CUDA"):
        GraphedPass({k: p.detach() for k, p in model.params.items()}, x, y, unit="tanh",
                    output=task.output, omega="squared")


@cuda
@pytest.mark.parametrize("name", ["temporal_order", "adding", "memorization"])
def test_graph_replays_match_the_plain_pass_while_weights_change(name):
    task = bptt.tasks.get(name, seed=1)
    model = bptt.ElmanRNN(task.n_in, 12, task.n_out, ensemble=3, output=task.output, seed=0,
                          dtype=torch.float64, device="cuda")
    for alpha in [2.0, torch.tensor([0.0, 1.0, 3.0]), 0.5]:
        x, y = (t.cuda() for t in task.sample(batch_size=5, length=17))
        graphed = model.forward_backward(x, y, alpha=alpha, cuda_graph=True)
        plain = model.forward_backward(x, y, alpha=alpha)
        assert model._graphs.current is not None and not model._graphs.failed
        for field in ("loss", "omega", "omega_fraction", "grad_norm", "h_last"):
            assert torch.allclose(getattr(graphed, field), getattr(plain, field), rtol=1e-12, atol=1e-14), field
        for k in plain.grads:
            assert torch.allclose(graphed.grads[k], plain.grads[k], rtol=1e-12, atol=1e-14), k
        sgd_update(model.params, {k: v.detach() for k, v in plain.grads.items()}, 0.1)
        held = graphed.grads["W_rec"].clone()
        model.forward_backward(x, y, alpha=alpha, cuda_graph=True)
        assert torch.equal(graphed.grads["W_rec"], held)          # results are copies
    first = model._graphs.current
    x, y = (t.cuda() for t in task.sample(batch_size=5, length=23))
    model.forward_backward(x, y, alpha=1.0, cuda_graph=True)
    assert model._graphs.current is not first                      # a new shape, a new graph
