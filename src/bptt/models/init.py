"""Initializations of the recurrent network, one seed per ensemble member.

The paper's three (§4.1, as its reference code draws them):

* ``sigmoid``: every weight N(0, 0.01²) (standard deviation 0.01); sigmoid units.
* ``basic_tanh``: every weight N(0, 0.1²); tanh units.
* ``smart_tanh``: W_in and W_out N(0, 0.01²); W_rec N(0, 0.01²) with all but 15
  entries of each row set to zero at random, then rescaled to spectral radius 0.95;
  tanh units.

and two later ones, for comparison:

* ``orthogonal``: W_rec a random orthogonal matrix times ``gain`` (Saxe et al. 2014);
  W_in, W_out N(0, 0.1²); tanh units.
* ``identity``: W_rec = ``scale``·I (Le, Jaitly & Hinton 2015, "IRNN"); W_in, W_out
  N(0, 0.001²) (their non-recurrent weights: Gaussian, mean zero, standard deviation
  0.001), biases zero; ReLU units. ``ElmanRNN(I, H, O, init="identity")`` is their
  IRNN; ``init_options={"scale": s}`` with s < 1 gives the scaled identity they
  recommend for tasks with shorter-range dependencies.

Biases start at zero. Weights are drawn in float64 from a ``torch.Generator`` seeded
with the member's seed, then cast, so that a member is the same network whatever
the ensemble it is part of and whatever the dtype (up to rounding).
"""

from __future__ import annotations

import math
import numbers

import torch

INITS = ("sigmoid", "basic_tanh", "smart_tanh", "orthogonal", "identity")

#: The unit each initialization was designed for (the default when none is given).
DEFAULT_UNIT = {"sigmoid": "sigmoid", "basic_tanh": "tanh", "smart_tanh": "tanh",
                "orthogonal": "tanh", "identity": "relu"}


def check_init(name: str) -> str:
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(INITS)}")
    return name


#: The options each initialization takes (see :func:`member_init`).
INIT_OPTIONS = {"sigmoid": (), "basic_tanh": (), "smart_tanh": ("nonzero", "radius"),
                "orthogonal": ("gain",), "identity": ("scale",)}


def check_init_options(name: str, options: dict) -> dict:
    """Check the options of initialization ``name``; return them unchanged.

    ``nonzero`` (smart_tanh: entries kept per row of W_rec) must be a positive integer,
    ``radius`` (smart_tanh: the spectral radius of W_rec) finite and > 0, ``gain``
    (orthogonal) and ``scale`` (identity) finite. ``ValueError`` names an option the
    initialization does not take, or a bad value.
    """
    check_init(name)
    for key, value in options.items():
        if key not in INIT_OPTIONS[name]:
            takes = ", ".join(INIT_OPTIONS[name]) or "none"
            raise ValueError(f"unknown option {key!r} of init {name}; it takes {takes}")
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if key == "nonzero":
            if not (number and math.isfinite(value) and int(value) == value and value >= 1):
                raise ValueError(f"nonzero must be a positive integer, got {value!r}")
        elif key == "radius":
            if not (number and math.isfinite(value) and value > 0):
                raise ValueError(f"radius must be finite and > 0, got {value!r}")
        elif not (number and math.isfinite(value)):
            raise ValueError(f"{key} must be finite, got {value!r}")
    return options


def _normal(gen: torch.Generator, shape: tuple[int, ...], std: float) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * std


def orthogonal_matrix(gen: torch.Generator, n: int) -> torch.Tensor:
    """A random ``[n, n]`` orthogonal matrix (float64), uniform over the orthogonal group:
    the Q of a QR decomposition of a standard normal matrix, its columns' signs fixed
    by R's diagonal (Saxe, McClelland & Ganguli 2014; Mezzadri 2007)."""
    q, r = torch.linalg.qr(_normal(gen, (n, n), 1.0))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def spectral_radius(W: torch.Tensor) -> torch.Tensor:
    """Largest |eigenvalue| of each square matrix in ``[..., H, H]``."""
    return torch.linalg.eigvals(W.to(torch.float64)).abs().amax(-1)


def member_init(name: str, n_in: int, n_hidden: int, n_out: int, seed: int,
                **options: float) -> dict[str, torch.Tensor]:
    """Parameters of one network (float64, no ensemble axis), drawn from ``seed``."""
    check_init_options(name, options)
    gen = torch.Generator().manual_seed(int(seed))
    H = n_hidden
    if name in ("sigmoid", "basic_tanh"):
        std = 0.01 if name == "sigmoid" else 0.1
        W_in, W_rec, W_out = _normal(gen, (n_in, H), std), _normal(gen, (H, H), std), _normal(gen, (H, n_out), std)
    elif name == "smart_tanh":
        W_in = _normal(gen, (n_in, H), 0.01)
        W_rec = _normal(gen, (H, H), 0.01)
        keep = int(options.get("nonzero", 15))
        if keep < H:
            order = torch.argsort(torch.rand(H, H, generator=gen, dtype=torch.float64), dim=1)
            W_rec.scatter_(1, order[:, keep:], 0.0)              # zero all but `keep` per row
        radius = float(options.get("radius", 0.95))
        W_rec = W_rec * (radius / spectral_radius(W_rec))
        W_out = _normal(gen, (H, n_out), 0.01)
    elif name == "orthogonal":
        W_in = _normal(gen, (n_in, H), 0.1)
        W_rec = orthogonal_matrix(gen, H) * float(options.get("gain", 1.0))
        W_out = _normal(gen, (H, n_out), 0.1)
    else:  # identity
        W_in = _normal(gen, (n_in, H), 0.001)
        W_rec = torch.eye(H, dtype=torch.float64) * float(options.get("scale", 1.0))
        W_out = _normal(gen, (H, n_out), 0.001)
    return {"W_rec": W_rec, "W_in": W_in, "b": torch.zeros(H, dtype=torch.float64),
            "W_out": W_out, "b_out": torch.zeros(n_out, dtype=torch.float64)}


def ensemble_init(name: str, n_in: int, n_hidden: int, n_out: int, seeds: list[int],
                  dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                  **options: float) -> dict[str, torch.Tensor]:
    """Stack :func:`member_init` over ``seeds`` into ``[E, ...]`` tensors."""
    members = [member_init(name, n_in, n_hidden, n_out, s, **options) for s in seeds]
    return {k: torch.stack([m[k] for m in members]).to(dtype=dtype, device=device)
            for k in members[0]}
