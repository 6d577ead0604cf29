"""The general path: the same quantities as :mod:`bptt.engine.exact`, by autograd.

A step-by-step loop in plain PyTorch, differentiated by ``torch.autograd``. It is
slow and memory-hungry (a graph per step) but obviously right, and serves as the
oracle the exact engine is tested against, and as the autograd forward of
:class:`bptt.ElmanRNN` for users who want to build on the model with PyTorch.
Ω is computed from the gradients ∂E/∂h_k that autograd returns, with those and the
states detached so that Ω reaches W_rec only through its explicit factor (eq. 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bptt.engine.dropout import check_dropout, dropout_masks
from bptt.engine.exact import StepResult
from bptt.engine.outputs import PER_STEP
from bptt.engine.units import activate, derivative_from_output
from bptt.clip.norm import global_norm
from bptt.omega.terms import OMEGA_BOUND


def run_states(params: dict[str, torch.Tensor], x: torch.Tensor, unit: str,
               h0: torch.Tensor | None = None) -> list[torch.Tensor]:
    """h_0..h_T as a list of ``[E, B, H]`` tensors, differentiable."""
    W_rec, W_in, b = params["W_rec"], params["W_in"], params["b"]
    E, H, _ = W_rec.shape
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    h = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device) if h0 is None else h0
    hs = [h]
    for t in range(x.shape[0]):
        u = x[t].to(W_rec.dtype)
        inp = torch.matmul(u, W_in) if x.dim() == 3 else torch.bmm(u, W_in)
        h = activate(torch.bmm(h, W_rec) + inp + b[:, None, :], unit)
        hs.append(h)
    return hs


def readout(params: dict[str, torch.Tensor], hs: list[torch.Tensor], output: str) -> torch.Tensor:
    """Output pre-activations: ``[E, B, O]`` at the last step, or ``[T, E, B, O]``."""
    W_out, b_out = params["W_out"], params["b_out"]
    if output in PER_STEP:
        return torch.stack([torch.bmm(h, W_out) + b_out[:, None, :] for h in hs[1:]])
    return torch.bmm(hs[-1], W_out) + b_out[:, None, :]


def step_losses(z: torch.Tensor, y: torch.Tensor, output: str) -> torch.Tensor:
    """The reference code's loss of each sequence, ``[E, B]`` for last-step outputs, or of
    each step of each sequence, ``[T, E, B]`` for per-step outputs."""
    if output == "last_softmax":
        return -torch.log_softmax(z, -1).gather(-1, y.expand(z.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    if output == "last_linear":
        return ((z - y) ** 2).sum(-1)
    T, E, B, _ = z.shape
    if output == "softmax":
        yy = y if y.dim() == 3 else y[:, None, :].expand(T, E, B)
        return -torch.log_softmax(z, -1).gather(-1, yy.unsqueeze(-1)).squeeze(-1)      # [T,E,B]
    yy = y if y.dim() == 4 else y[:, None].expand_as(z)
    return F.binary_cross_entropy_with_logits(z, yy, reduction="none").sum(-1)


def loss_of(z: torch.Tensor, y: torch.Tensor, output: str,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """The reference code's losses, per member ``[E]``, from the outputs of :func:`readout`."""
    per = step_losses(z, y, output)
    if output not in PER_STEP:
        return per.mean(-1)
    if mask is None:
        return per.mean(dim=(0, 2))
    m = mask.to(z.dtype)[:, None, :]
    return (per * m).sum(dim=(0, 2)) / m.sum()


def reference_forward_backward(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    unit: str,
    output: str,
    alpha: torch.Tensor | float = 0.0,
    omega: str | None = None,
    h0: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    omega_bound: float = OMEGA_BOUND,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> StepResult:
    """The oracle: same signature and result as :func:`bptt.engine.exact.forward_backward`.

    With ``dropout`` the masks are drawn as the engine draws them (same generator state,
    same masks; :func:`bptt.engine.dropout.dropout_masks`) and applied where Zaremba et
    al. (2014) put them: to the inputs and to the states fed to the readout.
    """
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    E = leaves["W_rec"].shape[0]
    readout_mask = None
    if dropout:
        W = leaves["W_rec"]
        T, B, I = x.shape[0], x.shape[-2], x.shape[-1]
        x_mask, readout_mask = dropout_masks(check_dropout(dropout), T, E, B, I, W.shape[1],
                                             per_step=output in PER_STEP, generator=generator,
                                             dtype=W.dtype, device=W.device)
        x = (x.to(W.dtype).unsqueeze(1) if x.dim() == 3 else x.to(W.dtype)) * x_mask
    hs = run_states(leaves, x, unit, h0)
    if readout_mask is None:
        shown = hs
    elif output in PER_STEP:
        shown = [hs[0]] + [h * m for h, m in zip(hs[1:], readout_mask.unbind(0))]
    else:
        shown = hs[:-1] + [hs[-1] * readout_mask]
    loss = loss_of(readout(leaves, shown, output), y, output, mask)
    total = loss.sum()
    omega_val = torch.zeros(E, dtype=loss.dtype)
    frac = torch.zeros(E, dtype=loss.dtype)
    if omega:
        gs = torch.autograd.grad(total, hs[1:], retain_graph=True)
        W = leaves["W_rec"]
        terms, entered = [], []
        for k in range(len(gs)):
            g = gs[k].detach()                                   # ∂E/∂h_{k+1}
            h = hs[k + 1].detach()
            sp = derivative_from_output(h, unit)
            c = g if sp is None else g * sp
            v = torch.bmm(c, W.transpose(1, 2))                  # g_{k+1} ∂h_{k+1}/∂h_k
            d = (g * g).sum(-1)
            ok = d >= omega_bound
            r = torch.where(ok, (v * v).sum(-1) / torch.where(ok, d, torch.ones_like(d)), torch.ones_like(d))
            if omega == "plain":
                r = torch.sqrt(r)
            terms.append(torch.where(ok, (r - 1) ** 2, torch.zeros_like(r)))
            entered.append(ok.to(loss.dtype))
        term = torch.stack(terms)                                # [T,E,B]
        ent = torch.stack(entered)
        count = ent.sum(dim=(0, 2))
        omega_val = term.sum(dim=(0, 2)) / count.clamp_min(1.0)
        n_pairs = ent.shape[0] * ent.shape[2] if mask is None else mask.sum()
        frac = (count / n_pairs).detach()
        a = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device).reshape(-1).expand(E)
        total = total + (a * omega_val).sum()
    names = list(leaves)
    grads = dict(zip(names, torch.autograd.grad(total, [leaves[n] for n in names])))
    norm = global_norm(grads)
    return StepResult(loss=loss.detach(), grads=grads, omega=omega_val.detach(), omega_fraction=frac,
                      grad_norm=norm, finite=torch.isfinite(norm), h_last=hs[-1].detach())
