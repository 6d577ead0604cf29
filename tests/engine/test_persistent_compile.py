"""The persistent kernel compiled for a GPU: for sm_90 without a device, and on CUDA when there is one.

Triton lowers the kernel to PTX and assembles it with the ``ptxas`` its wheel ships,
no device needed; this catches what the interpreter cannot (constructs the compiler
refuses, register spills at the Figure 7 size). It runs in a subprocess, because the
other tests of the kernel load it for the interpreter.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="triton is not installed (pip install 'bptt[gpu]')")

SRC = str(Path(__file__).resolve().parents[2] / "src")

PROGRAM = r'''
import glob, os, re, subprocess, sys, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from bptt.engine.outputs import OUTPUTS
from bptt.engine.persistent import launch_config, _block
from bptt.engine.persistent_kernel import persistent_pass_kernel as kernel

unit, output, H = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
block_b, warps = launch_config(H, 20)
sig = {n: ("*fp32" if n.endswith("_ptr") else "fp32" if n == "tolerance" else "i32") for n in kernel.arg_names}
sig.update(len_ptr="*i32", unit_ptr="*i32", wrong_ptr="*i32", y_ptr="*i64" if "softmax" in output else "*fp32")
const = dict(UNIT=unit, OUTPUT=OUTPUTS.index(output), BACKWARD=True, OMEGA=True,
             PER_STEP=output in ("softmax", "sigmoid"), CLASSES="softmax" in output, HAS_H0=False,
             HAS_MASK=False, BLOCK_B=block_b, BLOCK_I=16, BLOCK_H=_block(H), BLOCK_O=16, PRECISION="ieee")
sig.update({k: "constexpr" for k in const})
src = ASTSource(fn=kernel, signature=sig, constexprs={(kernel.arg_names.index(k),): v for k, v in const.items()})
compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
ptx = compiled.asm["ptx"]
assert ".entry persistent_pass_kernel" in ptx
ptxas = sorted(glob.glob(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas*")))
for tool in reversed(ptxas):                         # the newest that reads this PTX version
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    out = subprocess.run([tool, "-v", "--gpu-name", "sm_90a", f.name, "-o", os.devnull],
                         capture_output=True, text=True)
    if out.returncode == 0:
        text = out.stdout + out.stderr
        print("spills", re.findall(r"(\d+) bytes spill stores", text)[0])
        break
else:
    print("spills unknown")
'''


@pytest.mark.parametrize("unit, output", [(0, "last_softmax"), (1, "last_softmax"), (4, "last_softmax")])
def test_figure7_configuration_compiles_for_sm90_without_spills(unit, output):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TRITON_DEFAULT_FP_FUSION="1")
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", PROGRAM, str(unit), output, "50"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    if last == "spills unknown":
        pytest.skip("no ptxas in the Triton wheel reads this PTX: compiled to PTX only")
    assert last == "spills 0", proc.stdout


CUDA_PROGRAM = r'''
import itertools, torch
from bptt.engine import forward_backward
from bptt.engine.persistent import persistent_evaluate, persistent_forward_backward
from bptt.models.init import ensemble_init

dev = "cuda"
g = torch.Generator(device=dev).manual_seed(0)
failures = []
for unit, output, omega in itertools.product(["tanh", "sigmoid", "relu", "linear"],
                                             ["last_softmax", "softmax", "last_linear", "sigmoid"],
                                             [None, "squared", "plain"]):
    E, T, B, I, H, O = 3, 40, 20, 6, 50, 4
    p = ensemble_init("smart_tanh", I, H, O, [0, 1, 2], device=dev)
    x = torch.randn(T, E, B, I, generator=g, device=dev)
    if output == "last_softmax":
        y = torch.randint(O, (E, B), generator=g, device=dev)
    elif output == "softmax":
        y = torch.randint(O, (T, E, B), generator=g, device=dev)
    elif output == "last_linear":
        y = torch.rand(E, B, O, generator=g, device=dev)
    else:
        y = (torch.rand(T, E, B, O, generator=g, device=dev) < 0.3).float()
    lengths = [T, T // 2, 7]
    a = persistent_forward_backward(p, x, y, unit=unit, output=output, alpha=2.0, omega=omega, lengths=lengths)
    for e, L in enumerate(lengths):
        pe = {k: v[e:e + 1] for k, v in p.items()}
        ye = y[:L, e:e + 1] if output in ("softmax", "sigmoid") else y[e:e + 1]
        b = forward_backward(pe, x[:L, e:e + 1], ye, unit=unit, output=output, alpha=2.0, omega=omega)
        for k in b.grads:
            err = float((a.grads[k][e] - b.grads[k][0]).abs().max() / b.grads[k].abs().max().clamp_min(1e-30))
            if err > 1e-3:
                failures.append((unit, output, omega, e, k, err))
        for f in ("loss", "omega"):
            if not torch.allclose(getattr(a, f)[e], getattr(b, f)[0], rtol=1e-4, atol=1e-6):
                failures.append((unit, output, omega, e, f))
print("failures", failures)
'''


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device on this machine")
def test_compiled_kernel_matches_the_exact_engine_on_cuda():
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", CUDA_PROGRAM], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == "failures []", proc.stdout[-4000:]
