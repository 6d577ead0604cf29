"""The engine pass as one persistent Triton kernel: the whole time loop in one launch.

On a GPU the exact engine (:mod:`bptt.engine.exact`) runs the recurrence as two small
dependent kernels per step and direction, so an update of a small ensemble is
latency bound: hundreds of launches, each shorter than its launch cost. Here one
program of :func:`bptt.engine.persistent_kernel.persistent_pass_kernel` holds one
member's weights in registers and runs its forward sweep and its backward sweep
(output-layer errors for every output kind included) without leaving the kernel.
What remains outside is parallel over all steps and is done as the exact engine does
it: Ω's coefficients c_k (:func:`bptt.omega.terms.omega_terms`) and every weight
gradient in one batched product over all steps, Ω's gradient (eq. 10)
Σ_k c_k v_kᵀ (g_{k+1} ⊙ σ'(a_{k+1})) fused into W_rec's by adding α c_k v_k to h_k.

Members of different lengths run in one launch (``lengths``): each member's loop
stops at its own length, its loss and Ω are averaged over its own steps, and its
result equals the exact engine's on its own first ``lengths[e]`` steps.

Members may also differ in their unit (``unit`` one name per member), so that the
sigmoid- and tanh-unit runs of Figure 7 train in one launch.

Supported: every unit (tanh, sigmoid, relu, linear), every output kind
(``last_softmax``, ``softmax``, ``last_linear``, ``sigmoid``), Ω ``None``, ``"squared"``
and ``"plain"``, ``h0``, ``mask`` (per-step outputs), shared or per-member inputs and
targets, float32 and float64, H, I and O up to :data:`MAX_BLOCK` each, any batch
size. On the CPU the kernel runs only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before Triton is imported), which is how it is tested.
"""

from __future__ import annotations

import operator

import torch

from bptt.clip.norm import global_norm
from bptt.engine.exact import Evaluation, StepResult, Workspace
from bptt.engine.outputs import OUTPUTS, PER_STEP, check_output
from bptt.engine.units import UNITS, check_unit
from bptt.omega.terms import OMEGA_BOUND, check_omega, omega_terms

try:
    import triton
    from bptt.engine.persistent_kernel import persistent_pass_kernel
except ImportError as _err:                                    # pragma: no cover - depends on the install
    triton = None
    _IMPORT_ERROR = _err

#: The largest hidden, input or output size one program holds (a power of two).
MAX_BLOCK = 128

#: ``tl.dot`` precisions: ``"ieee"`` (exact float32 arithmetic, the default),
#: ``"tf32"`` and ``"tf32x3"`` (tensor cores; tf32x3 is close to float32).
PRECISIONS = ("ieee", "tf32", "tf32x3")


def available() -> bool:
    """Whether Triton can be imported (the kernel needs it; the rest of bptt does not)."""
    return triton is not None


def _block(n: int, least: int = 16) -> int:
    """The power of two ≥ max(n, least): 16 is the smallest size ``tl.dot`` takes."""
    return max(least, 1 << (int(n) - 1).bit_length())


def interpreted() -> bool:
    """Whether the kernel was built for Triton's CPU interpreter (``TRITON_INTERPRET=1``
    was set before :mod:`bptt.engine.persistent` was first imported)."""
    return triton is not None and type(persistent_pass_kernel).__name__ == "InterpretedFunction"


#: Device copies of per-member integers (lengths, unit codes), made once per (values,
#: device): a copy from the host inside a CUDA graph capture is not allowed, and the
#: warm-up calls before a capture fill this.
_DEVICE_INTS: dict[tuple, torch.Tensor] = {}


def _device_ints(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    key = (values, str(device))
    out = _DEVICE_INTS.get(key)
    if out is None:
        if len(_DEVICE_INTS) > 256:
            _DEVICE_INTS.clear()
        out = _DEVICE_INTS[key] = torch.tensor(values, dtype=torch.int32, device=device)
    return out


def _unit_code(unit, E: int, device) -> tuple[int, torch.Tensor | None]:
    """The kernel's ``UNIT`` and, for members of different units (``UNIT = 4``), their codes."""
    if isinstance(unit, str):
        return UNITS.index(check_unit(unit)), None
    names = tuple(unit)
    if len(names) != E:
        raise ValueError(f"unit must be one name or {E} names (one per member), got {len(names)}")
    codes = tuple(UNITS.index(check_unit(u)) for u in names)
    if len(set(codes)) == 1:
        return codes[0], None
    return len(UNITS), _device_ints(codes, device)


def launch_config(H: int, B: int) -> tuple[int, int]:
    """``(BLOCK_B, num_warps)`` by default: 16 sequences a program, and 8 warps from 64
    hidden units on.

    Compiled for sm_90 with ``input_precision="ieee"``, the Figure 7 network (H = 50,
    padded to 64) uses 192 registers a thread and spills nothing with 16 sequences and
    8 warps, but spills with 32 sequences or 4 warps (``tests/engine/test_persistent_compile.py``);
    at H = 128 it spills a little whatever the choice.
    """
    return 16, (8 if _block(H) >= 64 else 4)


def _check_targets(y: torch.Tensor, output: str, T: int, E: int, B: int, O: int, device) -> None:
    """The kernel reads targets by strides: a wrong shape would read out of bounds."""
    per_step = output in PER_STEP
    classes = output in ("last_softmax", "softmax")
    lead = (T,) if per_step else ()
    tail = () if classes else (O,)
    shapes = [lead + (B,) + tail, lead + (E, B) + tail]
    if tuple(y.shape) not in shapes:
        raise ValueError(f"targets of a {output} output must have shape {list(shapes[0])} or "
                         f"{list(shapes[1])}, got {list(y.shape)}")
    if classes == y.is_floating_point():
        raise ValueError(f"targets of a {output} output must be "
                         f"{'class indices (integers)' if classes else 'floats'}, got {y.dtype}")
    if y.device != device:
        raise ValueError(f"targets are on {y.device}, the parameters on {device}")


def _check(params: dict[str, torch.Tensor], x: torch.Tensor, *, unit: str, output: str,
           omega: str | None, h0: torch.Tensor | None, mask: torch.Tensor | None,
           lengths, precision: str, block_b: int | None = None) -> tuple[tuple[int, ...], torch.Tensor]:
    """Validate the arguments; return the lengths on the host and as int32 ``[E]`` on the device."""
    if triton is None:
        raise ValueError(f"the persistent kernel needs Triton, which is not importable ({_IMPORT_ERROR}); "
                         "install it with `pip install 'bptt[gpu]'`")
    check_output(output)
    check_omega(omega)
    if block_b is not None and (block_b < 16 or block_b & (block_b - 1)):
        raise ValueError(f"block_b must be a power of two >= 16, got {block_b}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    W_rec = params["W_rec"]
    E, H, _ = W_rec.shape
    I, O = params["W_in"].shape[1], params["W_out"].shape[2]
    if W_rec.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the persistent kernel runs float32 or float64, got {W_rec.dtype}")
    for name, size in (("hidden size H", H), ("input size I", I), ("output size O", O)):
        if size > MAX_BLOCK:
            raise ValueError(f"the persistent kernel holds at most {MAX_BLOCK} per dimension, "
                             f"got {name} = {size}; use bptt.engine.forward_backward")
    if W_rec.device.type != "cuda" and not interpreted():
        raise ValueError("the persistent kernel runs on a CUDA device, or on the CPU only under Triton's "
                         "interpreter (set TRITON_INTERPRET=1 before importing triton)")
    if x.dim() not in (3, 4) or x.shape[-1] != I or (x.dim() == 4 and x.shape[1] != E):
        raise ValueError(f"x must be [T, B, {I}] or [T, {E}, B, {I}], got {tuple(x.shape)}")
    T = x.shape[0]
    B = x.shape[-2]
    if T < 1:
        raise ValueError("x must have at least one time step")
    if x.device != W_rec.device:
        raise ValueError(f"x is on {x.device}, the parameters on {W_rec.device}")
    if h0 is not None and tuple(h0.shape) != (E, B, H):
        raise ValueError(f"h0 must be [E, B, H] = {[E, B, H]}, got {tuple(h0.shape)}")
    if mask is not None and tuple(mask.shape) != (T, B):
        raise ValueError(f"mask must be [T, B] = {[T, B]}, got {tuple(mask.shape)}")
    if lengths is None:
        host = (T,) * E
    else:
        if torch.is_tensor(lengths):
            lengths = lengths.tolist()
        try:
            host = tuple(operator.index(n) for n in lengths)
        except TypeError:
            host = ()
        if len(host) != E:
            raise ValueError(f"lengths must hold {E} integers (one per member), got {lengths!r}")
        if min(host) < 1 or max(host) > T:
            raise ValueError(f"lengths must lie in 1..{T} (the padded length of x), got {list(host)}")
    return host, _device_ints(host, W_rec.device)


def _strides(t: torch.Tensor, per_member: bool, per_step: bool, vector: bool) -> tuple[int, int, int, int]:
    """(time, member, sequence, output) strides of a target or input tensor; 0 where absent."""
    s = list(t.stride())
    st = s.pop(0) if per_step else 0
    se = s.pop(0) if per_member else 0
    sb = s.pop(0)
    so = s.pop(0) if vector else 0
    return st, se, sb, so


def _launch(params, x, y, *, unit, output, backward, omega, h0, mask, lengths, inv_count, tolerance,
            bufs, precision, num_warps, block_b):
    W_rec = params["W_rec"]
    E, H, _ = W_rec.shape
    I, O = params["W_in"].shape[1], params["W_out"].shape[2]
    T, B = x.shape[0], x.shape[-2]
    per_step = output in PER_STEP
    classes = output in ("last_softmax", "softmax")
    y_member = y.dim() == (1 if not per_step else 2) + (0 if classes else 1) + 1
    sx = _strides(x, x.dim() == 4, True, True)
    sy = _strides(y, y_member, per_step, not classes)
    default_b, default_warps = launch_config(H, B)
    block_b = block_b or default_b
    num_warps = num_warps or default_warps
    dummy = bufs["loss"]
    unit_code, unit_codes = _unit_code(unit, E, W_rec.device)
    grid = (E, triton.cdiv(B, block_b))
    persistent_pass_kernel[grid](
        x, *sx, y, *sy,
        W_rec, params["W_in"], params["b"], params["W_out"], params["b_out"],
        h0 if h0 is not None else dummy, mask if mask is not None else dummy, lengths,
        unit_codes if unit_codes is not None else lengths, inv_count,
        float(tolerance if tolerance is not None else 0.0),
        bufs.get("hs", dummy), bufs.get("delta", dummy), bufs.get("rec", dummy), bufs.get("vn", dummy),
        bufs.get("gn", dummy), bufs.get("dz", dummy), bufs["loss"], bufs["wrong"], bufs["h_last"],
        E, T, B, I, H, O,
        UNIT=unit_code, OUTPUT=OUTPUTS.index(output), BACKWARD=backward, OMEGA=bool(omega),
        PER_STEP=per_step, CLASSES=classes, HAS_H0=h0 is not None, HAS_MASK=mask is not None,
        BLOCK_B=block_b, BLOCK_I=_block(I), BLOCK_H=_block(H), BLOCK_O=_block(O),
        PRECISION=precision, num_warps=num_warps)


def _counts(output: str, mask, lengths: torch.Tensor, B: int, dtype) -> torch.Tensor:
    """What each member's loss is averaged over: B, or its (unmasked) steps × B."""
    if output not in PER_STEP:
        return torch.full(lengths.shape, float(B), dtype=dtype, device=lengths.device)
    if mask is None:
        return lengths.to(dtype) * B
    steps = torch.arange(mask.shape[0], device=lengths.device)
    per_step = mask.to(dtype).sum(1)                                   # [T]
    return (per_step[None, :] * (steps[None, :] < lengths[:, None])).sum(1).clamp_min(1.0)


@torch.no_grad()
def persistent_forward_backward(
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
    lengths=None,
    omega_bound: float = OMEGA_BOUND,
    precision: str = "ieee",
    num_warps: int | None = None,
    block_b: int | None = None,
    workspace: Workspace | None = None,
) -> StepResult:
    """Loss, exact gradients, Ω and the gradient norm of every member, the sweeps in one kernel.

    The same quantities as :func:`bptt.engine.exact.forward_backward`, which it
    matches to rounding.

    Args:
        params: ``W_rec [E,H,H]``, ``W_in [E,I,H]``, ``b [E,H]``, ``W_out [E,H,O]``,
            ``b_out [E,O]`` (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``).
        x: inputs ``[T, B, I]`` shared by all members, or ``[T, E, B, I]``.
        y: targets (see :mod:`bptt.engine.outputs`), shared or per member; per-step
            targets ``[T, ...]`` padded to the longest length like ``x``.
        unit: the recurrent unit, or one per member (a sequence of E names: members
            of different units in one launch).
        output: the output kind.
        alpha: Ω's weight, a float or ``[E]``.
        omega: ``None``, ``"squared"`` or ``"plain"``.
        h0: ``[E, B, H]`` initial state (zeros by default).
        mask: ``[T, B]`` 1 on real steps for per-step outputs.
        lengths: ``[E]`` the length of each member's sequences (default: all T); member
            e reads ``x[:lengths[e]]``, its last-step output is read at its own last
            step, and its loss and Ω are averaged over its own steps.
        omega_bound: pairs with ‖∂E/∂h_{k+1}‖² below this are left out of Ω (≥ 0).
        precision: ``tl.dot``'s input precision (see :data:`PRECISIONS`).
        num_warps: warps per program (default: :func:`launch_config`).
        block_b: sequences per program, a power of two ≥ 16 (default: :func:`launch_config`).
        workspace: buffers to reuse between calls (default: fresh ones).

    Returns:
        :class:`bptt.engine.exact.StepResult`; ``h_last`` is each member's state at
        its own last step.

    Raises:
        ValueError: an unsupported option or a shape that does not fit.
    """
    if omega_bound < 0:
        raise ValueError(f"omega_bound must be >= 0, got {omega_bound}")
    _unit_code(unit, params["W_rec"].shape[0], params["W_rec"].device)
    host_lengths, lengths_t = _check(params, x, unit=unit, output=output, omega=omega, h0=h0, mask=mask,
                                     lengths=lengths, precision=precision, block_b=block_b)
    _check_targets(y, output, x.shape[0], params["W_rec"].shape[0], x.shape[-2], params["W_out"].shape[2],
                   params["W_rec"].device)
    params = {k: v.contiguous() for k, v in params.items()}
    h0 = None if h0 is None else h0.to(params["W_rec"].dtype).contiguous()
    mask = None if mask is None else mask.to(params["W_rec"].dtype).contiguous()
    W_rec, W_out = params["W_rec"], params["W_out"]
    E, H, _ = W_rec.shape
    O = W_out.shape[2]
    T, B = x.shape[0], x.shape[-2]
    dtype, dev = W_rec.dtype, W_rec.device
    per_step = output in PER_STEP
    ragged = min(host_lengths) < T
    ws = workspace or Workspace()

    def buf(name, shape, fill=None):
        out = ws.get("persistent_" + name, shape, dtype if name != "wrong" else torch.int32, dev)
        if fill is not None:
            out.fill_(fill)
        return out

    pad = 0.0 if ragged else None                                       # steps no member writes
    bufs = {"hs": buf("hs", (E, T + 1, B, H), pad), "delta": buf("delta", (E, T, B, H), pad),
            "dz": buf("dz", (E, T, B, O) if per_step else (E, B, O), pad if per_step else None),
            "loss": buf("loss", (E, B)), "wrong": buf("wrong", (E, B)), "h_last": buf("h_last", (E, B, H))}
    if omega:
        bufs["rec"] = buf("rec", (E, T, B, H), pad)
        bufs["vn"] = buf("vn", (E, T, B), pad)
        bufs["gn"] = buf("gn", (E, T, B), float("-inf") if ragged else None)   # never enters Ω
    counts = _counts(output, mask, lengths_t, B, dtype)
    x_in = x if x.dtype == dtype else x.to(dtype)
    _launch(params, x_in, y, unit=unit, output=output, backward=True, omega=omega, h0=h0, mask=mask,
            lengths=lengths_t, inv_count=1.0 / counts, tolerance=None, bufs=bufs,
            precision=precision, num_warps=num_warps, block_b=block_b)

    hs, delta, dz = bufs["hs"], bufs["delta"], bufs["dz"]
    loss = bufs["loss"].sum(1)
    if per_step:
        grad_W_out = torch.bmm(hs[:, 1:].reshape(E, T * B, H).transpose(1, 2), dz.view(E, T * B, O))
        grad_b_out = dz.view(E, T * B, O).sum(1)
    else:
        grad_W_out = torch.bmm(bufs["h_last"].transpose(1, 2), dz)
        grad_b_out = dz.sum(1)

    # Ω (eq. 9 / the reference form) and its gradient (eq. 10), fused into W_rec's
    left = hs[:, :-1]                                                   # h_{t−1}  [E,T,B,H]
    if omega:
        steps = torch.arange(T, device=dev)
        real = (steps[None, :] < lengths_t[:, None]).to(dtype)          # [E, T]
        n_pairs = real.sum(1) * B if mask is None else (mask.to(dtype).sum(1)[None, :] * real).sum(1)
        terms = omega_terms(bufs["vn"].transpose(0, 1), bufs["gn"].transpose(0, 1), omega,
                            n_pairs=n_pairs.clamp_min(1.0), bound=omega_bound)
        alpha_t = torch.as_tensor(alpha, dtype=dtype, device=dev).reshape(-1).expand(E)
        scale = terms.coef.transpose(0, 1) * alpha_t[:, None, None]     # α c_k  [E,T,B]
        left = torch.addcmul(left, bufs["rec"], scale.unsqueeze(-1))
        omega_val, omega_frac = terms.omega, terms.fraction
    else:
        omega_val = torch.zeros(E, dtype=dtype, device=dev)
        omega_frac = torch.zeros(E, dtype=dtype, device=dev)

    # every weight gradient in one product over all steps
    delta_flat = delta.view(E, T * B, H)
    grad_W_rec = torch.bmm(left.reshape(E, T * B, H).transpose(1, 2), delta_flat)
    if x.dim() == 3:
        grad_W_in = torch.matmul(x_in.reshape(T * B, -1).t(), delta_flat)
    else:
        grad_W_in = torch.bmm(x_in.permute(1, 3, 0, 2).reshape(E, -1, T * B), delta_flat)
    grads = {"W_rec": grad_W_rec, "W_in": grad_W_in, "b": delta_flat.sum(1),
             "W_out": grad_W_out, "b_out": grad_b_out}
    grad_norm = global_norm(grads)
    return StepResult(loss=loss, grads=grads, omega=omega_val, omega_fraction=omega_frac,
                      grad_norm=grad_norm, finite=torch.isfinite(grad_norm), h_last=bufs["h_last"].clone())


@torch.no_grad()
def persistent_evaluate(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    unit: str,
    output: str,
    tolerance: float | None = None,
    h0: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    lengths=None,
    precision: str = "ieee",
    num_warps: int | None = None,
    block_b: int | None = None,
) -> Evaluation:
    """Loss and per-sequence errors, forward only, every member at its own length.

    The same quantities as :func:`bptt.engine.exact.evaluate` (a per-step softmax
    sequence is wrong when any of its unmasked steps is), from one kernel launch
    that keeps no states.

    Args:
        params, x, y, unit, output, h0, mask, lengths, precision, num_warps, block_b: as
            :func:`persistent_forward_backward`.
        tolerance: the squared error above which a ``last_linear`` output is wrong.

    Returns:
        :class:`bptt.engine.exact.Evaluation` (``wrong`` is ``None`` for sigmoid outputs).
    """
    if output == "last_linear" and tolerance is None:
        raise ValueError("a last_linear output needs a tolerance to count errors")
    _unit_code(unit, params["W_rec"].shape[0], params["W_rec"].device)
    _, lengths_t = _check(params, x, unit=unit, output=output, omega=None, h0=h0, mask=mask,
                          lengths=lengths, precision=precision, block_b=block_b)
    _check_targets(y, output, x.shape[0], params["W_rec"].shape[0], x.shape[-2], params["W_out"].shape[2],
                   params["W_rec"].device)
    params = {k: v.contiguous() for k, v in params.items()}
    h0 = None if h0 is None else h0.to(params["W_rec"].dtype).contiguous()
    mask = None if mask is None else mask.to(params["W_rec"].dtype).contiguous()
    W_rec = params["W_rec"]
    E, H, _ = W_rec.shape
    B = x.shape[-2]
    dtype, dev = W_rec.dtype, W_rec.device
    bufs = {"loss": torch.empty(E, B, dtype=dtype, device=dev),
            "wrong": torch.empty(E, B, dtype=torch.int32, device=dev),
            "h_last": torch.empty(E, B, H, dtype=dtype, device=dev)}
    counts = _counts(output, mask, lengths_t, B, dtype)
    _launch(params, x if x.dtype == dtype else x.to(dtype), y, unit=unit, output=output, backward=False,
            omega=None, h0=h0, mask=mask, lengths=lengths_t, inv_count=1.0 / counts, tolerance=tolerance,
            bufs=bufs, precision=precision, num_warps=num_warps, block_b=block_b)
    wrong = None if output == "sigmoid" else bufs["wrong"].bool()
    return Evaluation(loss=bufs["loss"].sum(1), wrong=wrong, h_last=bufs["h_last"])
