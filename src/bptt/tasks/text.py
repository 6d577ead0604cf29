"""Character-level Penn Treebank (Pascanu, Mikolov & Bengio 2013, section 4.2).

Mikolov's character files write every character followed by a space and mark
word boundaries with ``_``. The loader drops those separating spaces and keeps
everything else, ``_`` and the line ends included, as symbols (50 of them).
The vocabulary is the sorted set of training symbols; each split becomes a
numpy ``int64`` array of symbol indices.

Two tasks, as in the paper: predict the next symbol (``ahead=1``) and predict
the symbol five steps ahead (``ahead=5``). Symbol ``t`` of a split is the input
and symbol ``t + ahead`` the target, for ``t = 0 .. N - 1 - ahead``, so a split
of ``N`` symbols has ``N - ahead`` predictions (:meth:`TextData.n_predictions`).
Bits per character: total cross-entropy in nats over those predictions,
divided by their number and by ``ln 2`` (:func:`bits_per_char`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import checksums
from .checksums import DEFAULT_DATA_DIR

__all__ = [
    "DEFAULT_DATA_DIR",
    "PTB_CHAR_FILES",
    "TextData",
    "TextWindow",
    "load_ptb_chars",
    "read_char_file",
    "stream_windows",
    "char_nll_sum",
    "bits_per_char",
]

PTB_CHAR_FILES: dict[str, str] = {
    "train": "ptb/ptb.char.train.txt",
    "valid": "ptb/ptb.char.valid.txt",
    "test": "ptb/ptb.char.test.txt",
}
SPLITS = tuple(PTB_CHAR_FILES)


class TextWindow(NamedTuple):
    """One batch of :meth:`TextData.stream`, time-major.

    x: ``[T, B]`` int64 input symbols; y: ``[T, B]`` int64 targets (the symbol
    ``ahead`` positions after the input); mask: ``[T, B]`` float32, 1 at real
    predictions and 0 at padding.
    """

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor


def read_char_file(path: str | os.PathLike) -> str:
    """Symbols of a character file: the text with the separating spaces removed.

    Every symbol in the file is followed by one space; anything else raises
    :class:`ValueError`. Line ends are kept exactly as written.
    """
    with open(path, encoding="utf-8", newline="") as f:
        raw = f.read()
    symbols, seps = raw[0::2], raw[1::2]
    if len(raw) % 2 or seps.strip(" "):
        bad = next((2 * i + 1 for i, c in enumerate(seps) if c != " "), len(raw))
        raise ValueError(
            f"{path}: not in 'symbol space symbol space ...' form (offset {bad})"
        )
    if " " in symbols:
        raise ValueError(f"{path}: a space appears where a symbol is expected")
    return symbols


def _codes(text: str) -> np.ndarray:
    return np.fromiter(map(ord, text), dtype=np.int64, count=len(text))


def stream_windows(
    data: np.ndarray,
    batch_size: int,
    window: int,
    ahead: int = 1,
    device: torch.device | str | None = None,
) -> Iterator[TextWindow]:
    """Stream ``(x, y, mask)`` batches over one symbol array, lanes carrying state.

    The ``P = len(data) - ahead`` input/target pairs ``(data[t], data[t + ahead])``
    are cut into ``batch_size`` contiguous lanes (the first ``P % batch_size``
    lanes one pair longer). Batch ``k`` holds pairs ``k*window .. (k+1)*window - 1``
    of every lane, so a model keeping its hidden state between batches reads
    each lane as one continuous text; the state starts at zero before the first
    batch. Each pair appears exactly once with mask 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if ahead < 1:
        raise ValueError(f"ahead must be >= 1, got {ahead}")
    data = np.asarray(data, dtype=np.int64)
    n_pairs = len(data) - ahead
    if n_pairs < batch_size:
        raise ValueError(
            f"{len(data)} symbols give {max(n_pairs, 0)} predictions, fewer than batch_size={batch_size}"
        )
    base, extra = divmod(n_pairs, batch_size)
    lane_len = np.full(batch_size, base, dtype=np.int64)
    lane_len[:extra] += 1
    lane_start = np.concatenate([[0], np.cumsum(lane_len)[:-1]])
    longest = int(lane_len[0])
    for offset in range(0, longest, window):
        t_len = min(window, longest - offset)
        steps = offset + np.arange(t_len)[:, None]  # [T, 1]
        valid = steps < lane_len[None, :]  # [T, B]
        idx = np.where(valid, lane_start[None, :] + steps, 0)
        x = data[idx]
        y = data[idx + ahead]
        x[~valid] = 0
        y[~valid] = 0
        out = TextWindow(
            torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(valid.astype(np.float32))
        )
        if device is not None:
            out = TextWindow(*(t.to(device) for t in out))
        yield out


def char_nll_sum(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (nats) of the real predictions of a batch.

    ``logits`` is ``[T, B, V]``, ``targets`` ``[T, B]`` int64, ``mask`` ``[T, B]``.
    """
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (ce * mask.reshape(-1)).sum()


def bits_per_char(nll_nats_sum: float | torch.Tensor, n_symbols: int) -> float:
    """Bits per character: total cross-entropy in nats over ``n_symbols`` predictions, in bits."""
    if n_symbols <= 0:
        raise ValueError(f"n_symbols must be positive, got {n_symbols}")
    return float(nll_nats_sum) / (n_symbols * math.log(2))


@dataclass
class TextData:
    """Encoded character splits and their vocabulary."""

    vocab: tuple[str, ...]
    train: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)

    def n_symbols(self, split: str) -> int:
        return int(len(self.split(split)))

    def n_predictions(self, split: str, ahead: int = 1) -> int:
        """Predicted symbols in ``split`` for a horizon ``ahead``: ``N - ahead``."""
        return max(self.n_symbols(split) - ahead, 0)

    def encode(self, text: str, where: str = "text") -> np.ndarray:
        """Indices of the symbols of ``text``; an unknown symbol raises ValueError."""
        return _encode(text, self.vocab, where)

    def decode(self, indices) -> str:
        table = np.asarray(self.vocab, dtype=object)
        return "".join(table[np.asarray(indices, dtype=np.int64)])

    def stream(
        self,
        split: str,
        batch_size: int,
        window: int,
        ahead: int = 1,
        device: torch.device | str | None = None,
    ) -> Iterator[TextWindow]:
        """:func:`stream_windows` over ``split``."""
        return stream_windows(self.split(split), batch_size, window, ahead=ahead, device=device)


def _encode(text: str, vocab: tuple[str, ...], where: str) -> np.ndarray:
    vocab_codes = np.array([ord(c) for c in vocab], dtype=np.int64)
    codes = _codes(text)
    idx = np.searchsorted(vocab_codes, codes)
    idx_clipped = np.minimum(idx, len(vocab_codes) - 1)
    unknown = vocab_codes[idx_clipped] != codes
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        symbols = sorted({text[i] for i in np.flatnonzero(unknown)})
        raise ValueError(
            f"{where}: symbol(s) {symbols!r} not in the training vocabulary "
            f"(first at symbol {first})"
        )
    return idx


def load_ptb_chars(data_dir: str | os.PathLike | None = None, verify: bool = True) -> TextData:
    """Load ``ptb/ptb.char.{train,valid,test}.txt`` from the data directory.

    ``data_dir`` ``None`` uses :func:`bptt.data.verify.default_data_dir`. With
    ``verify`` the files are first checked against the SHA-256 embedded in
    :mod:`bptt.data.registry` (and the directory's ``SHA256SUMS``, if any, must
    agree with it). A missing file raises :class:`FileNotFoundError` naming it,
    where it was looked for and the ``bptt data download`` command that fetches it.
    """
    root = checksums.resolve_data_dir(data_dir)
    if verify:
        checksums.verify(root, PTB_CHAR_FILES.values())
    else:
        checksums.require(root, PTB_CHAR_FILES.values())
    texts = {split: read_char_file(Path(root) / rel) for split, rel in PTB_CHAR_FILES.items()}
    vocab = tuple(sorted(set(texts["train"])))
    encoded = {split: _encode(text, vocab, PTB_CHAR_FILES[split]) for split, text in texts.items()}
    return TextData(vocab=vocab, **encoded)
