"""The exact backpropagation through time of the paper's RNN, for an ensemble.

One sweep forward and one sweep backward give, for each of E independent networks,
the loss, the gradients of every parameter, Ω and its gradient, and the gradient norm.
Only the two matrix products of the recurrence run inside the time loop; every weight
gradient is accumulated afterwards in one large product over all steps, since

    ∂E/∂W_rec = Σ_t h_{t−1}^T δ_t,   ∂E/∂W_in = Σ_t u_t^T δ_t,   ∂E/∂b = Σ_t δ_t,

with δ_t = ∂E/∂a_t the error at the pre-activation of step t (the paper's eq. 5 summed
over its temporal components). Ω's gradient (eq. 10) has the same shape,
Σ_k (∂Ω/∂v_k)^T δ_{k+1}, and is fused into the same product.

Shapes (time-major, like ``torch.nn.RNN``): T steps, E members, B sequences, I inputs,
H hidden units, O outputs.

The engine switches the CPU to flush denormal numbers to zero
(``torch.set_flush_denormal``): error signals that vanish through time otherwise
pass through the denormal range, where CPU arithmetic is up to a hundred times slower.
Values that small (below 1e-38 in float32) are zero for every purpose here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bptt.engine.dropout import check_dropout, dropout_masks
from bptt.engine.outputs import PER_STEP, loss_and_grad, wrong_sequences
from bptt.engine.units import activate_
from bptt.clip.norm import global_norm
from bptt.omega.terms import OMEGA_BOUND, omega_terms

PARAM_NAMES = ("W_rec", "W_in", "b", "W_out", "b_out")


@dataclass
class StepResult:
    """What one engine pass returns, per ensemble member.

    Attributes:
        loss: ``[E]`` the loss E of each member (without Ω).
        grads: parameter name → gradient of E + α·Ω (Ω through W_rec only), before
            any clipping; shapes as the parameters.
        omega: ``[E]`` Ω (0 when not asked for).
        omega_fraction: ``[E]`` fraction of (step, sequence) pairs that entered Ω.
        grad_norm: ``[E]`` the global norm of the whole gradient of each member.
        finite: ``[E]`` bool, whether that norm is finite.
        h_last: ``[E, B, H]`` the last hidden state (to carry into the next window).
    """

    loss: torch.Tensor
    grads: dict[str, torch.Tensor]
    omega: torch.Tensor
    omega_fraction: torch.Tensor
    grad_norm: torch.Tensor
    finite: torch.Tensor
    h_last: torch.Tensor


class Workspace:
    """Buffers reused from one engine pass to the next.

    The large per-step arrays ([T, E, B, H]) are the same size at every update;
    allocating them afresh costs more than the arithmetic on them (the operating
    system hands out new pages one fault at a time), so each pass takes views of
    flat buffers that only grow. Results never alias these buffers. One workspace
    serves one thread; :func:`forward_backward` uses a module-wide one by default.
    """

    def __init__(self) -> None:
        self._flat: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        numel = 1
        for n in shape:
            numel *= n
        key = (name, dtype, device)
        flat = self._flat.get(key)
        if flat is None or flat.numel() < numel:
            flat = torch.empty(numel, dtype=dtype, device=device)
            self._flat[key] = flat
        return flat[:numel].view(shape)

    def clear(self) -> None:
        self._flat.clear()


_WORKSPACE = Workspace()


def project_inputs(x: torch.Tensor, W_in: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """u_t W_in + b for every step, ensemble-major: ``[T, B, I]`` or ``[T, E, B, I]`` → ``[E, T, B, H]``."""
    E, I, H = W_in.shape
    T = x.shape[0]
    if x.dim() == 3:
        B = x.shape[1]
        xw = torch.baddbmm(b.unsqueeze(1), x.reshape(1, T * B, I).expand(E, T * B, I), W_in)
    else:
        B = x.shape[2]
        xw = torch.baddbmm(b.unsqueeze(1), x.permute(1, 0, 2, 3).reshape(E, T * B, I), W_in)
    return xw.view(E, T, B, H)


def _flat(z: torch.Tensor) -> torch.Tensor:
    """``[T, E, B, K]`` → ``[E, T·B, K]`` (a copy)."""
    T, E, B, K = z.shape
    return z.permute(1, 0, 2, 3).reshape(E, T * B, K)


def _flat_targets(y: torch.Tensor, per_member: bool, T: int) -> torch.Tensor:
    """Per-step targets ``[T, B(, O)]`` or ``[T, E, B(, O)]`` → ``[E or 1, T·B(, O)]``."""
    if per_member:
        y = y.transpose(0, 1)
        return y.reshape(y.shape[0], -1, *y.shape[3:])
    return y.reshape(1, -1, *y.shape[2:])


def _sigma_prime_into(out: torch.Tensor, h: torch.Tensor, unit: str) -> None:
    """out ← σ'(a) computed from h = σ(a) (any strides)."""
    if unit == "tanh":
        torch.addcmul(torch.ones((), dtype=h.dtype, device=h.device), h, h, value=-1.0, out=out)
    elif unit == "sigmoid":
        torch.addcmul(h, h, h, value=-1.0, out=out)
    elif unit == "relu":
        out.copy_(h > 0)
    else:
        out.fill_(1.0)


#: From this many hidden values per step on, tanh runs as 2σ(2a) − 1 (see _recurrence).
TANH_BY_SIGMOID_FROM = 4096


def _recurrence(W_rec: torch.Tensor, W_in: torch.Tensor, b: torch.Tensor, unit: str, per_step: int):
    """Weights for the time loop and the in-place activation that follows each product.

    For blocks of ``per_step`` ≥ 4096 values, tanh runs as tanh(a) = 2 σ(2a) − 1 with
    the factor 2 folded into the weights: PyTorch's vectorised sigmoid is over twice
    as fast as its tanh on the CPU, which outweighs the two extra passes, and the
    identity is exact up to rounding (|error| ≤ 2 ulp of 1). Smaller blocks are
    dominated by the cost of each call, and keep the single tanh.
    """
    if unit == "tanh" and per_step >= TANH_BY_SIGMOID_FROM:
        def post(h: torch.Tensor) -> None:
            h.sigmoid_().mul_(2.0).sub_(1.0)
        return 2.0 * W_rec, 2.0 * W_in, 2.0 * b, post

    def post(h: torch.Tensor) -> None:
        activate_(h, unit)
    return W_rec, W_in, b, post


def _tanh_states(hs: torch.Tensor, h_steps, x: torch.Tensor, W_rec, W_in, b) -> None:
    """Fill ``hs[1:]`` with the tanh states, by way of tanh(a) = 2σ(2a) − 1.

    PyTorch's vectorised sigmoid is over twice as fast as its tanh on the CPU. Small
    blocks (fewer than 4096 values per step), where the cost of each call dominates,
    and every block on a GPU, where each kernel launch does, run the recurrence on
    s = (h + 1)/2, s_{t+1} = σ(s_t·4W_rec + 2(u_t W_in + b) − 2·1ᵀW_rec): one product
    and one sigmoid per step, and h = 2s − 1 for all steps at once afterwards. Large blocks fold the factor 2 into the weights and finish each
    step with 2σ − 1 while the block is in cache. Both are exact up to rounding (the
    tests hold them to autograd's tanh at 1e-10 in float64).
    """
    if hs[0].numel() < TANH_BY_SIGMOID_FROM or hs.is_cuda:
        W4 = 4.0 * W_rec
        xw = project_inputs(x, 2.0 * W_in, 2.0 * b - 2.0 * W_rec.sum(1))   # [E,T,B,H]
        s = hs[0].add(1.0).mul_(0.5)                                       # s_0 = (h_0 + 1)/2
        for t, xw_t in enumerate(xw.unbind(1)):
            s = torch.baddbmm(xw_t, s, W4, out=h_steps[t + 1]).sigmoid_()
        hs[1:].mul_(2.0).sub_(1.0)
        return
    W2 = 2.0 * W_rec
    xw = project_inputs(x, 2.0 * W_in, 2.0 * b)
    for t, xw_t in enumerate(xw.unbind(1)):
        torch.baddbmm(xw_t, h_steps[t], W2, out=h_steps[t + 1]).sigmoid_().mul_(2.0).sub_(1.0)


class _threads:
    """Run small problems on one thread: below about 2·10⁵ multiply-adds per step,
    waking a second thread for every small product costs more than it saves."""

    SMALL = 200_000

    def __init__(self, work_per_step: int) -> None:
        self.one = work_per_step < self.SMALL and torch.get_num_threads() > 1
        self.saved = 0

    def __enter__(self) -> None:
        if self.one:
            self.saved = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        if self.one:
            torch.set_num_threads(self.saved)


@torch.no_grad()
def forward_backward(
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
    workspace: Workspace | None = None,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> StepResult:
    """Loss, exact gradients, Ω and the gradient norm of every ensemble member.

    Args:
        params: ``W_rec [E,H,H]``, ``W_in [E,I,H]``, ``b [E,H]``, ``W_out [E,H,O]``,
            ``b_out [E,O]``.
        x: inputs ``[T, B, I]`` shared by all members, or ``[T, E, B, I]``.
        y: targets (see :mod:`bptt.engine.outputs`), shared or per member.
        unit: the recurrent unit.
        output: the output kind.
        alpha: Ω's weight, a float or ``[E]``.
        omega: ``None`` (no Ω), ``"squared"`` or ``"plain"``.
        h0: ``[E, B, H]`` initial state (zeros by default).
        mask: ``[T, B]`` 1 on real steps for per-step outputs with padding.
        omega_bound: pairs with ‖∂E/∂h_{k+1}‖² below this are left out of Ω.
        workspace: buffers to reuse (default: a module-wide one).
        dropout: the probability p of dropping an input and a state fed to the readout
            (:mod:`bptt.engine.dropout`: fresh masks per member, sequence and step,
            scaled by 1/(1 − p); never on the recurrent path). 0: no dropout, and the
            pass is the one without the option.
        generator: the random stream the masks are drawn from (with ``dropout``).

    Returns:
        :class:`StepResult`.
    """
    torch.set_flush_denormal(True)
    E, H = params["W_rec"].shape[0], params["W_rec"].shape[1]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    readout_mask = None
    if dropout:
        x, readout_mask = _dropped_inputs(x, check_dropout(dropout), E, H, output, params["W_rec"], generator)
    with _threads(E * B * H * H):
        return _forward_backward(params, x, y, unit=unit, output=output, alpha=alpha, omega=omega,
                                 h0=h0, mask=mask, omega_bound=omega_bound, ws=workspace or _WORKSPACE,
                                 readout_mask=readout_mask)


def _dropped_inputs(x, p, E, H, output, like, generator):
    """The inputs with their dropout mask applied (``[T, E, B, I]``) and the readout mask."""
    T, B, I = x.shape[0], x.shape[-2], x.shape[-1]
    x_mask, readout_mask = dropout_masks(p, T, E, B, I, H, per_step=output in PER_STEP, generator=generator,
                                         dtype=like.dtype, device=like.device)
    x = x.to(like.dtype)
    return (x.unsqueeze(1) if x.dim() == 3 else x) * x_mask, readout_mask


def _forward_backward(params, x, y, *, unit, output, alpha, omega, h0, mask, omega_bound, ws, readout_mask=None):
    W_rec, W_in, W_out, b_out = params["W_rec"], params["W_in"], params["W_out"], params["b_out"]
    E, H, _ = W_rec.shape
    T = x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    dtype, dev = W_rec.dtype, W_rec.device
    x = x.to(dtype)
    per_step = output in PER_STEP

    # ---- forward: hs[t] = h_t, t = 0..T (time-major, so each step writes a block) ---
    hs = ws.get("hs", (T + 1, E, B, H), dtype, dev)
    if h0 is None:
        hs[0].zero_()
    else:
        hs[0].copy_(h0)
    # The time loops run in inference mode: nothing in them is differentiated, and
    # skipping autograd's dispatch saves a few microseconds on each of the 4T calls.
    with torch.inference_mode():
        h_steps = hs.unbind(0)                                    # views made once, not per step
        if unit == "tanh":
            _tanh_states(hs, h_steps, x, W_rec, W_in, params["b"])
        else:
            xw = project_inputs(x, W_in, params["b"])             # [E,T,B,H]
            for t, xw_t in enumerate(xw.unbind(1)):
                activate_(torch.baddbmm(xw_t, h_steps[t], W_rec, out=h_steps[t + 1]), unit)
            del xw

    # ---- outputs and loss ------------------------------------------------------------
    if per_step:
        weight = None
        count: torch.Tensor | float = float(T * B)
        if mask is not None:
            weight = mask.to(dtype).reshape(1, T * B)
            count = weight.sum().clamp_min(1.0)
        top = ws.get("top", (E, T, B, H), dtype, dev)
        top.copy_(hs[1:].permute(1, 0, 2, 3))
        if readout_mask is not None:                              # dropout on h_t → output
            top.mul_(readout_mask.permute(1, 0, 2, 3))
        top = top.view(E, T * B, H)
        z = torch.baddbmm(b_out.unsqueeze(1), top, W_out)         # [E, T*B, O]
        yt = _flat_targets(y, y.dim() == (3 if output == "softmax" else 4), T)
        loss, dz = loss_and_grad(z, yt, output, weight, count)
        grad_W_out = torch.bmm(top.transpose(1, 2), dz)
        direct = torch.bmm(dz, W_out.transpose(1, 2)).view(E, T, B, H)   # ∂E/∂h_t, explicit part
        if readout_mask is not None:
            direct.mul_(readout_mask.permute(1, 0, 2, 3))
        g = direct[:, T - 1]
    else:
        h_T = hs[T] if readout_mask is None else hs[T] * readout_mask
        z = torch.baddbmm(b_out.unsqueeze(1), h_T, W_out)         # [E,B,O]
        loss, dz = loss_and_grad(z, y, output, None, float(B))
        grad_W_out = torch.bmm(h_T.transpose(1, 2), dz)
        direct = None
        g = torch.bmm(dz, W_out.transpose(1, 2))                  # ∂E/∂h_T  [E,B,H]
        if readout_mask is not None:
            g.mul_(readout_mask)
    grad_b_out = dz.sum(1)
    g_T = g

    # ---- backward ----------------------------------------------------------------------
    # delta[:, t-1] = δ_t = ∂E/∂a_t (ensemble-major, so that Σ_t becomes one product);
    # rec[k] = v_k = δ_{k+1} W_rec^T, the recurrent part of ∂E/∂h_k (kept for Ω).
    delta = ws.get("delta", (E, T, B, H), dtype, dev)
    _sigma_prime_into(delta, hs[1:].permute(1, 0, 2, 3), unit)   # σ'(a_t), multiplied by g below
    rec = ws.get("rec", (T, E, B, H), dtype, dev) if omega else None
    spare = ws.get("spare", (2, E, B, H), dtype, dev)
    g_buf = ws.get("g", (E, B, H), dtype, dev) if per_step else None
    W_rec_T = W_rec.transpose(1, 2)
    with torch.inference_mode():
        d_steps = delta.unbind(1)
        v_steps = rec.unbind(0) if rec is not None else None
        spares = spare.unbind(0)
        direct_steps = direct.unbind(1) if per_step else None
        for t in range(T, 0, -1):
            d = d_steps[t - 1].mul_(g)
            if t == 1 and rec is None:
                break
            v = torch.bmm(d, W_rec_T, out=v_steps[t - 1] if v_steps is not None else spares[t % 2])
            g = torch.add(v, direct_steps[t - 2], out=g_buf) if per_step and t > 1 else v

    # ---- Ω (eq. 9 / reference form) and its gradient (eq. 10), fused into W_rec's ------
    left = ws.get("left", (E, T, B, H), dtype, dev)               # h_{t-1} (+ α ∂Ω/∂v_{t-1})
    left_tm = left.permute(1, 0, 2, 3)                            # time-major view of it
    if omega:
        v_norm2 = torch.linalg.vector_norm(rec, dim=-1).square_()  # ‖v_k‖²  [T,E,B]
        if per_step:
            g_all = ws.get("g_all", (T, E, B, H), dtype, dev)       # ∂E/∂h_{k+1}, k = 0..T−1
            g_all.copy_(direct.permute(1, 0, 2, 3))
            g_all[:-1] += rec[1:]
            g_norm2 = torch.linalg.vector_norm(g_all, dim=-1).square_()
        else:
            g_norm2 = torch.empty_like(v_norm2)
            g_norm2[:-1] = v_norm2[1:]
            g_norm2[-1] = g_T.square().sum(-1)
        n_pairs = float(T * B) if mask is None else mask.to(dtype).sum().clamp_min(1.0)
        terms = omega_terms(v_norm2, g_norm2, omega, n_pairs=n_pairs, bound=omega_bound)
        alpha_t = torch.as_tensor(alpha, dtype=dtype, device=dev).reshape(-1).expand(E)
        scale = terms.coef * alpha_t.reshape(1, E, 1)               # α c_k  [T,E,B]
        torch.addcmul(hs[:-1], rec, scale.unsqueeze(-1), out=left_tm)
        omega_val, omega_frac = terms.omega, terms.fraction
    else:
        left_tm.copy_(hs[:-1])
        omega_val = torch.zeros(E, dtype=dtype, device=dev)
        omega_frac = torch.zeros(E, dtype=dtype, device=dev)

    # ---- weight gradients in one product over all steps -----------------------------
    delta_flat = delta.view(E, T * B, H)
    grad_W_rec = torch.bmm(left.view(E, T * B, H).transpose(1, 2), delta_flat)
    if x.dim() == 3:
        grad_W_in = torch.matmul(x.reshape(T * B, -1).t(), delta_flat)
    else:
        grad_W_in = torch.bmm(x.permute(1, 3, 0, 2).reshape(E, -1, T * B), delta_flat)
    grad_b = delta_flat.sum(1)

    grads = {"W_rec": grad_W_rec, "W_in": grad_W_in, "b": grad_b,
             "W_out": grad_W_out, "b_out": grad_b_out}
    grad_norm = global_norm(grads)
    return StepResult(loss=loss, grads=grads, omega=omega_val, omega_fraction=omega_frac,
                      grad_norm=grad_norm, finite=torch.isfinite(grad_norm), h_last=hs[T].clone())


@dataclass
class Evaluation:
    """Forward-only evaluation of every member.

    Attributes:
        loss: ``[E]`` mean loss over the batch.
        wrong: ``[E, B]`` bool, which sequences are wrong (``None`` for sigmoid outputs).
        h_last: ``[E, B, H]`` the last hidden state.
    """

    loss: torch.Tensor
    wrong: torch.Tensor | None
    h_last: torch.Tensor


@torch.no_grad()
def evaluate(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    unit: str,
    output: str,
    tolerance: float | None = None,
    h0: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    chunk: int = 64,
) -> Evaluation:
    """Loss and per-sequence errors without keeping the activations.

    Memory stays flat in the length: the input projection and the per-step outputs
    are formed ``chunk`` steps at a time. A sequence is wrong for a per-step softmax
    when any of its (unmasked) steps is wrong.
    """
    torch.set_flush_denormal(True)
    E, H = params["W_rec"].shape[0], params["W_rec"].shape[1]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    with _threads(E * B * H * H):
        return _evaluate(params, x, y, unit=unit, output=output, tolerance=tolerance, h0=h0,
                         mask=mask, chunk=chunk)


def _evaluate(params, x, y, *, unit, output, tolerance, h0, mask, chunk) -> Evaluation:
    W_rec, W_in, b, W_out, b_out = (params[k] for k in PARAM_NAMES)
    E, H, _ = W_rec.shape
    T = x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    dtype = W_rec.dtype
    per_step = output in PER_STEP
    h = torch.zeros(E, B, H, dtype=dtype, device=W_rec.device) if h0 is None else h0.clone()
    buf = torch.empty_like(h)
    total = torch.zeros(E, dtype=dtype, device=W_rec.device)
    wrong = torch.zeros(E, B, dtype=torch.bool, device=W_rec.device) if output == "softmax" else None
    count = float(T * B) if mask is None else mask.to(dtype).sum().clamp_min(1.0)
    per_member_y = y.dim() == (3 if output == "softmax" else 4)
    W_step, W_in_step, b_step, post = _recurrence(W_rec, W_in, b, unit, E * B * H)
    for s in range(0, T, chunk):
        e = min(T, s + chunk)
        xw = project_inputs(x[s:e].to(dtype), W_in_step, b_step)   # [E, n, B, H]
        states = torch.empty(e - s, E, B, H, dtype=dtype, device=W_rec.device) if per_step else None
        for i, xw_i in enumerate(xw.unbind(1)):
            torch.baddbmm(xw_i, h, W_step, out=buf)
            post(buf)
            h, buf = buf, h
            if per_step:
                states[i] = h
        if per_step:
            n = e - s
            z = torch.baddbmm(b_out.unsqueeze(1), _flat(states), W_out)   # [E, n*B, O]
            yt = _flat_targets(y[s:e], per_member_y, n)
            weight = None if mask is None else mask[s:e].to(dtype).reshape(1, n * B)
            loss, _ = loss_and_grad(z, yt, output, weight, count)
            total += loss
            if output == "softmax":
                miss = z.argmax(-1) != yt
                if weight is not None:
                    miss &= weight.bool()
                wrong |= miss.view(E, n, B).any(1)
    if not per_step:
        z = torch.baddbmm(b_out.unsqueeze(1), h, W_out)
        total, _ = loss_and_grad(z, y, output, None, float(B))
        wrong = wrong_sequences(z, y, output, tolerance)
    return Evaluation(loss=total, wrong=wrong, h_last=h)
