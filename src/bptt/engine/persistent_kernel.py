"""The Triton kernel behind :mod:`bptt.engine.persistent`: both sweeps of BPTT in one launch.

One program runs one member's (or one block of a member's sequences') whole time
loop: it loads W_rec, W_in, b, W_out and b_out once, keeps them in registers, and
walks forward through the T steps of

    a_t = h_{t−1} W_rec + u_t W_in + b,   h_t = σ(a_t),

storing h_1..h_T; then, after a barrier, it walks back from the member's last step,
forming at each step the error ∂E/∂h_t (the output layer's error, read at every
step or at the last one, plus the recurrent part v_t = δ_{t+1} W_recᵀ), the
pre-activation error δ_t = ∂E/∂h_t ⊙ σ'(a_t), and, for Ω, ‖v_{t−1}‖² and ‖∂E/∂h_t‖²
(paper §3.3, eq. 9). Every block is padded to a power of two (at least 16, the
smallest ``tl.dot``) with masked loads and stores.

Programs form a grid (E, ⌈B / BLOCK_B⌉); sequences never interact in the recurrence,
so a program needs nothing from any other. Each member stops at its own length, so
one launch serves members of different lengths.

Codes of the compile-time options (see :mod:`bptt.engine.persistent`):
``UNIT`` 0 tanh, 1 sigmoid, 2 relu, 3 linear, 4 each member its own (codes 0–3 in
``unit_ptr [E]``, every unit computed and one selected); ``OUTPUT`` 0 last_softmax, 1 softmax
(per step), 2 last_linear, 3 sigmoid (per step); ``PER_STEP`` (outputs 1 and 3) and
``CLASSES`` (outputs 0 and 1) are derived from ``OUTPUT`` by the caller. Offsets are
32-bit: every buffer must hold fewer than 2³¹ elements.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tanh(a):
    """tanh as sign(a)(1 − e^{−2|a|})/(1 + e^{−2|a|}), which cannot overflow."""
    e = tl.exp(-2.0 * tl.abs(a))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(a < 0, -t, t)


@triton.jit
def _activate(a, code, UNIT: tl.constexpr):
    """σ(a) for the unit ``UNIT``, or (``UNIT == 4``) for the member's unit ``code``."""
    if UNIT == 0:
        return _tanh(a)
    elif UNIT == 1:
        return 1.0 / (1.0 + tl.exp(-a))
    elif UNIT == 2:
        return tl.maximum(a, 0.0)
    elif UNIT == 3:
        return a
    else:
        sig = 1.0 / (1.0 + tl.exp(-a))
        return tl.where(code == 0, _tanh(a),
                        tl.where(code == 1, sig, tl.where(code == 2, tl.maximum(a, 0.0), a)))


@triton.jit
def _derivative(h, code, UNIT: tl.constexpr):
    """σ'(a) read off h = σ(a) (see :mod:`bptt.engine.units`); ``code`` as in :func:`_activate`."""
    if UNIT == 0:
        return 1.0 - h * h
    elif UNIT == 1:
        return h * (1.0 - h)
    elif UNIT == 2:
        return tl.where(h > 0, 1.0, 0.0).to(h.dtype)
    elif UNIT == 3:
        return tl.full(h.shape, 1.0, h.dtype)
    else:
        relu = tl.where(h > 0, 1.0, 0.0).to(h.dtype)
        return tl.where(code == 0, 1.0 - h * h,
                        tl.where(code == 1, h * (1.0 - h), tl.where(code == 2, relu, 1.0)))


@triton.jit
def _output_error(z, y_step, co, r_ok, o_ok, sy_o, tolerance, OUTPUT: tl.constexpr, CLASSES: tl.constexpr):
    """Loss per row, ∂loss/∂z and whether the row is wrong, as :mod:`bptt.engine.outputs`.

    ``z`` ``[BB, OB]`` output pre-activations; ``y_step`` ``[BB]`` pointers to each
    row's target at this step (a class index for softmax outputs, else a row of O
    floats with stride ``sy_o``); ``co`` the output columns, ``o_ok`` ``[1, OB]`` the
    real ones. Returns ``(nll [BB], dz [BB, OB], wrong [BB] int32)``.
    """
    cols = co[None, :]
    if CLASSES:
        y_cls = tl.load(y_step, mask=r_ok, other=0)
        zm = tl.where(o_ok, z, float("-inf"))
        top = tl.max(zm, axis=1)
        ex = tl.exp(zm - top[:, None])
        total = tl.sum(ex, axis=1)
        hit = cols == y_cls[:, None]
        z_y = tl.sum(tl.where(hit, z, 0.0), axis=1)
        nll = top + tl.log(total) - z_y
        dz = ex / total[:, None] - tl.where(hit, 1.0, 0.0)
        # argmax ≠ y, with argmax's first-index rule for ties
        beats = (zm > z_y[:, None]) | ((zm == z_y[:, None]) & (cols < y_cls[:, None]))
        wrong = tl.max(beats.to(tl.int32), axis=1)
    else:
        y_val = tl.load(y_step[:, None] + cols * sy_o, mask=r_ok[:, None] & o_ok, other=0.0).to(z.dtype)
        if OUTPUT == 2:
            diff = tl.where(o_ok, z - y_val, 0.0)
            nll = tl.sum(diff * diff, axis=1)
            dz = 2.0 * diff
            wrong = (nll > tolerance).to(tl.int32)
        else:
            per = tl.maximum(z, 0.0) - z * y_val + tl.log(1.0 + tl.exp(-tl.abs(z)))
            nll = tl.sum(tl.where(o_ok, per, 0.0), axis=1)
            dz = tl.where(o_ok, 1.0 / (1.0 + tl.exp(-z)) - y_val, 0.0)
            wrong = (nll < 0).to(tl.int32)                    # no per-sequence error: all 0
    return nll, dz, wrong


@triton.jit
def persistent_pass_kernel(
    # inputs
    x_ptr, sx_t, sx_e, sx_b, sx_i,
    y_ptr, sy_t, sy_e, sy_b, sy_o,
    w_rec_ptr, w_in_ptr, b_ptr, w_out_ptr, b_out_ptr,
    h0_ptr, mask_ptr, len_ptr, unit_ptr, inv_count_ptr, tolerance,
    # outputs
    hs_ptr, delta_ptr, rec_ptr, vn_ptr, gn_ptr, dz_ptr, loss_ptr, wrong_ptr, h_last_ptr,
    # sizes
    E, T, B, I, H, O,
    UNIT: tl.constexpr, OUTPUT: tl.constexpr, BACKWARD: tl.constexpr, OMEGA: tl.constexpr,
    PER_STEP: tl.constexpr, CLASSES: tl.constexpr, HAS_H0: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_O: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Forward sweep, then (``BACKWARD``) the backward sweep, of one block of one member.

    Layouts (all contiguous, ensemble-major): ``hs [E, T+1, B, H]``, ``delta``/``rec``
    ``[E, T, B, H]`` (δ_t at t−1, v_k at k), ``vn``/``gn`` ``[E, T, B]`` (‖v_k‖²,
    ‖∂E/∂h_{k+1}‖² at k), ``dz`` ``[E, T, B, O]`` per step or ``[E, B, O]`` at the
    last step, ``loss``/``wrong`` ``[E, B]`` per sequence (loss already divided by the
    member's count), ``h_last [E, B, H]``. Steps past a member's length are not
    touched. Without ``BACKWARD`` only ``loss``, ``wrong`` and ``h_last`` are written
    (evaluation: per-step outputs are then read during the forward sweep).
    """
    e = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    r_ok = rows < B
    ci = tl.arange(0, BLOCK_I)
    ch = tl.arange(0, BLOCK_H)
    co = tl.arange(0, BLOCK_O)
    rh = tl.arange(0, BLOCK_H)
    i_ok = ci[None, :] < I
    h_ok = ch[None, :] < H
    o_ok = co[None, :] < O
    bh_ok = r_ok[:, None] & h_ok
    bo_ok = r_ok[:, None] & o_ok

    length = tl.load(len_ptr + e)
    if UNIT == 4:
        code = tl.load(unit_ptr + e)                          # this member's unit
    else:
        code = 0
    inv_count = tl.load(inv_count_ptr + e)

    # the weights, once: W [H, H], Wᵀ, W_in [I, H], W_out [H, O], W_outᵀ, b, b_out
    w_base = w_rec_ptr + e * H * H
    hh_ok = (rh[:, None] < H) & h_ok
    W = tl.load(w_base + rh[:, None] * H + ch[None, :], mask=hh_ok, other=0.0)
    ri = tl.arange(0, BLOCK_I)
    W_in = tl.load(w_in_ptr + e * I * H + ri[:, None] * H + ch[None, :],
                   mask=(ri[:, None] < I) & h_ok, other=0.0)
    bias = tl.load(b_ptr + e * H + ch[None, :], mask=h_ok, other=0.0)
    W_out = tl.load(w_out_ptr + e * H * O + rh[:, None] * O + co[None, :],
                    mask=(rh[:, None] < H) & o_ok, other=0.0)
    b_out = tl.load(b_out_ptr + e * O + co[None, :], mask=o_ok, other=0.0)

    bh = rows[:, None] * H + ch[None, :]                      # offsets of a [B, H] block
    hs_base = hs_ptr + e * (T + 1) * B * H
    x_rows = x_ptr + e * sx_e + rows[:, None] * sx_b + ci[None, :] * sx_i
    y_rows = y_ptr + e * sy_e + rows * sy_b

    # ---- forward ----------------------------------------------------------------------
    if HAS_H0:
        h = tl.load(h0_ptr + e * B * H + bh, mask=bh_ok, other=0.0)
    else:
        h = tl.zeros([BLOCK_B, BLOCK_H], dtype=W.dtype)
    if BACKWARD:
        tl.store(hs_base + bh, h, mask=bh_ok)
    loss_acc = tl.zeros([BLOCK_B], dtype=W.dtype)
    wrong_acc = tl.zeros([BLOCK_B], dtype=tl.int32)
    for t in range(0, length):
        u = tl.load(x_rows + t * sx_t, mask=r_ok[:, None] & i_ok, other=0.0).to(W.dtype)
        a = tl.dot(h, W, input_precision=PRECISION) + tl.dot(u, W_in, input_precision=PRECISION) + bias
        h = tl.where(h_ok, _activate(a, code, UNIT), 0.0)
        if BACKWARD:
            tl.store(hs_base + (t + 1) * B * H + bh, h, mask=bh_ok)
        elif PER_STEP:
            z = tl.dot(h, W_out, input_precision=PRECISION) + b_out
            nll, dz, wrong = _output_error(z, y_rows + t * sy_t, co, r_ok, o_ok, sy_o, tolerance,
                                           OUTPUT, CLASSES)
            if HAS_MASK:
                weight = tl.load(mask_ptr + t * B + rows, mask=r_ok, other=0.0).to(W.dtype)
                nll = nll * weight
                wrong = tl.where(weight != 0, wrong, 0)
            loss_acc += tl.where(r_ok, nll, 0.0) * inv_count
            wrong_acc = tl.maximum(wrong_acc, wrong)
    tl.store(h_last_ptr + e * B * H + bh, h, mask=bh_ok)

    if not PER_STEP:                                          # the output at the last step
        z = tl.dot(h, W_out, input_precision=PRECISION) + b_out
        nll, dz, wrong_acc = _output_error(z, y_rows, co, r_ok, o_ok, sy_o, tolerance, OUTPUT, CLASSES)
        loss_acc = tl.where(r_ok, nll, 0.0) * inv_count
        dz = tl.where(r_ok[:, None], dz, 0.0) * inv_count
        if BACKWARD:
            tl.store(dz_ptr + e * B * O + rows[:, None] * O + co[None, :], dz, mask=bo_ok)

    # ---- backward ---------------------------------------------------------------------
    if BACKWARD:
        tl.debug_barrier()                                    # hs written by the whole program
        W_T = tl.load(w_base + ch[None, :] * H + rh[:, None], mask=hh_ok, other=0.0)    # W_recᵀ
        W_out_T = tl.load(w_out_ptr + e * H * O + ch[None, :] * O + co[:, None],
                          mask=(co[:, None] < O) & h_ok, other=0.0)                     # [O, H]
        if PER_STEP:
            v = tl.zeros([BLOCK_B, BLOCK_H], dtype=W.dtype)   # v_T = 0: nothing after the end
        else:
            v = tl.dot(dz, W_out_T, input_precision=PRECISION)   # ∂E/∂h_T
        d_base = delta_ptr + e * T * B * H
        r_base = rec_ptr + e * T * B * H
        n_base = e * T * B + rows
        for i in range(0, length):
            t = length - i                                    # step t, stored at t − 1
            h_t = tl.load(hs_base + t * B * H + bh, mask=bh_ok, other=0.0)
            if PER_STEP:
                z = tl.dot(h_t, W_out, input_precision=PRECISION) + b_out
                nll, dz, wrong = _output_error(z, y_rows + (t - 1) * sy_t, co, r_ok, o_ok, sy_o, tolerance,
                                               OUTPUT, CLASSES)
                scale = tl.where(r_ok, inv_count, 0.0)
                if HAS_MASK:
                    scale = scale * tl.load(mask_ptr + (t - 1) * B + rows, mask=r_ok, other=0.0).to(W.dtype)
                loss_acc += nll * scale
                dz = dz * scale[:, None]
                tl.store(dz_ptr + ((e * T + t - 1) * B + rows[:, None]) * O + co[None, :], dz, mask=bo_ok)
                g = v + tl.dot(dz, W_out_T, input_precision=PRECISION)
            else:
                g = v
            if OMEGA:
                tl.store(gn_ptr + n_base + (t - 1) * B, tl.sum(g * g, axis=1), mask=r_ok)
            d = g * _derivative(h_t, code, UNIT)
            tl.store(d_base + (t - 1) * B * H + bh, d, mask=bh_ok)
            v = tl.dot(d, W_T, input_precision=PRECISION)     # v_{t−1} = δ_t W_recᵀ
            if OMEGA:
                tl.store(r_base + (t - 1) * B * H + bh, v, mask=bh_ok)
                tl.store(vn_ptr + n_base + (t - 1) * B, tl.sum(v * v, axis=1), mask=r_ok)

    tl.store(loss_ptr + e * B + rows, loss_acc, mask=r_ok)
    tl.store(wrong_ptr + e * B + rows, wrong_acc, mask=r_ok)
