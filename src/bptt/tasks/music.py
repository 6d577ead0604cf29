"""Polyphonic music prediction (Pascanu, Mikolov & Bengio 2013, section 4.2).

The four piano-roll data sets of Boulanger-Lewandowski et al. (2012): each
sequence is a ``[T, 88]`` binary array, one row per time step, column ``j``
the piano key with MIDI number ``21 + j``. The task is next-frame prediction:
from frames ``0..t`` predict frame ``t + 1`` with 88 independent sigmoid
outputs, so a sequence of ``T`` frames yields ``T - 1`` predicted steps.

Measure: the negative log-likelihood per time step, i.e. the sum over the 88
keys of the binary cross-entropy (in nats) of each predicted frame, summed over
every predicted step of the split and divided by the number of those steps,
:meth:`MusicData.n_steps` (``sum(T - 1)`` over its sequences). Use
:func:`frame_nll_sum` per batch and :func:`nll_per_step` at the end.

Training follows the paper: long sequences are cut into windows (200 steps)
and the hidden state is carried from one window to the next of the same
sequence. :func:`iterate_windows` packs the sequences of a split into
``batch_size`` parallel lanes; each lane runs through its sequences back to
back, one window-length chunk per batch, and a ``reset`` flag marks the lanes
whose chunk starts a new sequence (their state must be zeroed first).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import checksums
from .checksums import DEFAULT_DATA_DIR

__all__ = [
    "DEFAULT_DATA_DIR",
    "N_KEYS",
    "LOWEST_MIDI_NOTE",
    "MUSIC_FILES",
    "MUSIC_NAMES",
    "MusicData",
    "MusicWindow",
    "load_music",
    "iterate_windows",
    "count_windows",
    "sequence_steps",
    "frame_nll_sum",
    "nll_per_step",
]

N_KEYS = 88
LOWEST_MIDI_NOTE = 21

#: data set name -> path inside the data directory
MUSIC_FILES: dict[str, str] = {
    "jsb_chorales": "music/JSB_Chorales.mat",
    "nottingham": "music/Nottingham.mat",
    "musedata": "music/MuseData.mat",
    "piano_midi": "music/Piano_midi.mat",
}
MUSIC_NAMES: tuple[str, ...] = tuple(MUSIC_FILES)

SPLITS = ("train", "valid", "test")
_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


class MusicWindow(NamedTuple):
    """One batch of :func:`iterate_windows`, time-major.

    x: ``[T, B, 88]`` float32 input frames; y: ``[T, B, 88]`` float32 target
    frames (the frame after the input one); mask: ``[T, B]`` float32, 1 at real
    steps and 0 at padding; reset: ``[B]`` bool, True where the lane starts a
    new sequence in this window.
    """

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    reset: torch.Tensor


def sequence_steps(seq: np.ndarray) -> int:
    """Number of predicted steps of a sequence of ``T`` frames: ``max(T - 1, 0)``."""
    return max(int(seq.shape[0]) - 1, 0)


def _plan_lanes(
    lengths: Sequence[int], batch_size: int, window: int, order: Sequence[int]
) -> list[list[tuple[int, int, int]]]:
    """Assign sequences to lanes, then cut them into window chunks.

    Returns for each lane the list of chunks ``(seq_index, start_step, n_steps)``.
    Each sequence goes, in ``order``, to the lane holding the fewest chunks so
    far (lowest index on ties), which keeps the lanes about equally long.
    """
    lanes: list[list[tuple[int, int, int]]] = [[] for _ in range(batch_size)]
    for i in order:
        steps = lengths[i]
        if steps <= 0:
            continue
        lane = min(range(batch_size), key=lambda b: len(lanes[b]))
        for start in range(0, steps, window):
            lanes[lane].append((i, start, min(window, steps - start)))
    return lanes


def _as_generator(rng) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check_lanes(batch_size: int, window: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def count_windows(
    sequences: Sequence[np.ndarray],
    batch_size: int,
    window: int = 200,
    rng: np.random.Generator | int | None = None,
) -> int:
    """Number of batches :func:`iterate_windows` yields for the same arguments.

    Plans the lanes exactly as :func:`iterate_windows` does (the same order for the
    same ``rng``: a seed, or a numpy ``Generator`` in the same state) without building
    any batch: the length, in windows, of the longest lane.

    Args:
        sequences: piano rolls ``[T, 88]``.
        batch_size: number of lanes (>= 1).
        window: most predicted steps per chunk (>= 1).
        rng: ``None`` (the sequences in their given order), a seed, or a ``Generator``
            (advanced by one permutation, as :func:`iterate_windows` would advance it).

    Returns:
        The number of windows; 0 when no sequence has a predicted step.
    """
    _check_lanes(batch_size, window)
    gen = _as_generator(rng)
    order = np.arange(len(sequences)) if gen is None else gen.permutation(len(sequences))
    lanes = _plan_lanes([sequence_steps(s) for s in sequences], batch_size, window, order.tolist())
    return max((len(lane) for lane in lanes), default=0)


def iterate_windows(
    sequences: Sequence[np.ndarray],
    batch_size: int,
    window: int = 200,
    rng: np.random.Generator | int | None = None,
    device: torch.device | str | None = None,
) -> Iterator[MusicWindow]:
    """Stream next-frame-prediction batches over ``sequences`` in lanes.

    The sequences (in the given order, or shuffled by ``rng``, a numpy
    ``Generator`` or a seed) are dealt to ``batch_size`` lanes. Every sequence
    with ``T`` frames is cut into chunks of at most ``window`` predicted steps
    (inputs frames ``s..s+L-1``, targets frames ``s+1..s+L``); a lane's
    chunks follow one another across consecutive batches, so a model keeping
    its hidden state between batches sees each sequence from its start. A new
    sequence always begins at the start of a window, with ``reset`` True for
    that lane; a chunk shorter than the window, and a lane with no chunk
    left, are padded with zeros and ``mask`` 0. The time length of a batch is
    the longest chunk in it (at most ``window``).

    Every predicted step of every sequence appears exactly once with mask 1,
    so ``sum(mask)`` over all batches equals ``sum(T - 1)``.
    """
    _check_lanes(batch_size, window)
    gen = _as_generator(rng)
    lengths = [sequence_steps(s) for s in sequences]
    order = np.arange(len(sequences)) if gen is None else gen.permutation(len(sequences))
    lanes = _plan_lanes(lengths, batch_size, window, order.tolist())
    n_windows = max((len(lane) for lane in lanes), default=0)
    for k in range(n_windows):
        chunks = [lane[k] if k < len(lane) else None for lane in lanes]
        t_len = max(c[2] for c in chunks if c is not None)
        x = np.zeros((t_len, batch_size, N_KEYS), dtype=np.float32)
        y = np.zeros((t_len, batch_size, N_KEYS), dtype=np.float32)
        mask = np.zeros((t_len, batch_size), dtype=np.float32)
        reset = np.zeros(batch_size, dtype=bool)
        for b, chunk in enumerate(chunks):
            if chunk is None:
                continue
            i, start, n = chunk
            seq = sequences[i]
            x[:n, b] = seq[start : start + n]
            y[:n, b] = seq[start + 1 : start + n + 1]
            mask[:n, b] = 1.0
            reset[b] = start == 0
        out = MusicWindow(
            torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask), torch.from_numpy(reset)
        )
        if device is not None:
            out = MusicWindow(*(t.to(device) for t in out))
        yield out


def frame_nll_sum(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood (nats) of the real steps of a batch.

    ``logits`` and ``targets`` are ``[T, B, 88]`` (pre-sigmoid outputs and 0/1
    frames), ``mask`` is ``[T, B]``. Returns the sum over keys of the binary
    cross-entropy, summed over the steps where ``mask`` is 1. Dividing the
    total over a split by :meth:`MusicData.n_steps` (or by ``mask.sum()``
    for a single batch) gives the NLL per time step.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
    return (bce * mask).sum()


def nll_per_step(nll_sum: float | torch.Tensor, n_steps: int) -> float:
    """Negative log-likelihood per time step: total nats over ``n_steps`` predicted frames."""
    if n_steps <= 0:
        raise ValueError(f"n_steps must be positive, got {n_steps}")
    return float(nll_sum) / n_steps


@dataclass
class MusicData:
    """A polyphonic music data set: lists of ``[T, 88]`` uint8 piano rolls per split."""

    name: str
    train: list[np.ndarray] = field(repr=False)
    valid: list[np.ndarray] = field(repr=False)
    test: list[np.ndarray] = field(repr=False)

    def split(self, split: str) -> list[np.ndarray]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)

    def n_sequences(self, split: str) -> int:
        return len(self.split(split))

    def n_frames(self, split: str) -> int:
        return sum(int(s.shape[0]) for s in self.split(split))

    def n_steps(self, split: str) -> int:
        """Predicted steps in ``split``: ``sum(T - 1)``, the divisor of the NLL per step."""
        return sum(sequence_steps(s) for s in self.split(split))

    def windows(
        self,
        split: str,
        batch_size: int,
        window: int = 200,
        rng: np.random.Generator | int | None = None,
        device: torch.device | str | None = None,
    ) -> Iterator[MusicWindow]:
        """:func:`iterate_windows` over the sequences of ``split``."""
        return iterate_windows(self.split(split), batch_size, window, rng=rng, device=device)


def _canonical_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in MUSIC_FILES:
        raise ValueError(f"unknown music data set {name!r}; valid names: {', '.join(MUSIC_NAMES)}")
    return key


def _read_cells(cells: np.ndarray, path: os.PathLike, key: str) -> list[np.ndarray]:
    out = []
    for i, item in enumerate(np.asarray(cells, dtype=object).ravel()):
        seq = np.asarray(item)
        if seq.ndim != 2 or seq.shape[1] != N_KEYS:
            raise ValueError(f"{path}: {key}[{i}] has shape {seq.shape}, expected (T, {N_KEYS})")
        if seq.dtype != np.uint8:
            if not np.isin(seq, (0, 1)).all():
                raise ValueError(f"{path}: {key}[{i}] holds values other than 0 and 1")
            seq = seq.astype(np.uint8)
        out.append(np.ascontiguousarray(seq))
    return out


def load_music(
    name: str, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> MusicData:
    """Load one of ``"jsb_chorales"``, ``"nottingham"``, ``"musedata"``, ``"piano_midi"``.

    ``data_dir`` is the data directory (holding ``music/*.mat``); ``None`` uses
    :func:`bptt.data.verify.default_data_dir`. With ``verify`` the file is first
    checked against the SHA-256 embedded in :mod:`bptt.data.registry` (and the
    directory's ``SHA256SUMS``, if any, must agree with it). A missing file
    raises :class:`FileNotFoundError` naming it, where it was looked for and the
    ``bptt data download`` command that fetches it.
    """
    from scipy.io import loadmat

    key = _canonical_name(name)
    root = checksums.resolve_data_dir(data_dir)
    rel = MUSIC_FILES[key]
    if verify:
        checksums.verify(root, [rel])
    else:
        checksums.require(root, [rel])
    path = root / rel
    mat = loadmat(path)
    splits = {}
    for split, mat_key in _MAT_KEYS.items():
        if mat_key not in mat:
            raise ValueError(f"{path}: no variable {mat_key!r}")
        splits[split] = _read_cells(mat[mat_key], path, mat_key)
    return MusicData(name=key, **splits)
