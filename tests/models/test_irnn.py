"""ElmanRNN(init="identity") is the IRNN of Le, Jaitly & Hinton (2015)."""

import torch

from bptt.models import ElmanRNN


def test_identity_init_is_le_et_al_irnn():
    m = ElmanRNN(6, 300, 4, init="identity", ensemble=2, dtype=torch.float64)
    assert m.unit == "relu"
    assert torch.equal(m.W_rec.detach(), torch.eye(300, dtype=torch.float64).expand(2, 300, 300))
    assert torch.count_nonzero(m.b) == 0 and torch.count_nonzero(m.b_out) == 0
    for w in (m.W_in.detach(), m.W_out.detach()):                # N(0, 0.001²)
        assert abs(float(w.std()) - 0.001) < 0.0001 and abs(float(w.mean())) < 0.0001
    scaled = ElmanRNN(6, 10, 4, init="identity", init_options={"scale": 0.5})
    assert torch.equal(scaled.W_rec.detach()[0], 0.5 * torch.eye(10))
    assert scaled.config()["init_options"] == {"scale": 0.5}
