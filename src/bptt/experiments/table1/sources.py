"""Table 1's data: piano rolls and Penn Treebank characters behind one window interface.

Music windows come from :func:`bptt.tasks.music.iterate_windows` (sequences dealt to
lanes in a fresh random order each epoch; ``reset`` marks a lane starting a sequence);
PTB windows from :meth:`bptt.tasks.text.TextData.stream` (contiguous lanes, the state
carried through the whole split). PTB symbols enter one-hot (50 inputs).

**Measures.** Music: negative log-likelihood per time step in nats (summed over the 88
keys, averaged over every predicted step of the split). PTB: bits per character over
every prediction of the split (``N − ahead`` of them). :func:`evaluate_split` returns
the summed nats and the count; each source's ``to_measure`` turns them into its figure.
"""

from __future__ import annotations

import math
import os
from typing import Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


from .protocol import DATASETS, PROTOCOL

__all__ = ["Batch", "MusicSource", "TextSource", "load_source", "evaluate_split"]


class Batch(NamedTuple):
    """One window: ``x [T,B,I]`` float, ``y`` (``[T,B,O]`` float or ``[T,B]`` int64),
    ``mask [T,B]``, ``reset [B]`` bool or ``None`` (lanes that start a new sequence)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    reset: torch.Tensor | None


class MusicSource:
    """Piano rolls as windows of next-frame prediction (88 sigmoid outputs)."""

    output = "sigmoid"

    def __init__(self, data) -> None:
        self.data = data
        self.n_in = self.n_out = 88

    def batches(self, split: str, batch_size: int, window: int, rng: int | None = None,
                device: str | torch.device = "cpu", by_length: bool = False) -> Iterator[Batch]:
        """Windows of ``split``: sequences in a random order drawn from ``rng``, in their
        stored order, or (``by_length``, for evaluation) longest first, which packs
        sequences of similar length side by side and so wastes fewer padded steps."""
        from bptt.tasks.music import iterate_windows

        seqs = self.data.split(split)
        gen = None if rng is None else np.random.default_rng(rng)
        if by_length:
            seqs = sorted(seqs, key=lambda s: -s.shape[0])
        for w in iterate_windows(seqs, batch_size, window, rng=gen):
            yield Batch(w.x.to(device), w.y.to(device), w.mask.to(device), w.reset.to(device))

    def n_windows(self, split: str, batch_size: int, window: int, rng: int | None = None) -> int:
        """How many windows :meth:`batches` yields for the same arguments (``by_length`` off)."""
        from bptt.tasks.music import count_windows

        return count_windows(self.data.split(split), batch_size, window, rng=rng)

    def n_steps(self, split: str) -> int:
        """Predicted steps of ``split``."""
        return self.data.n_steps(split)

    @staticmethod
    def to_measure(nats: float, count: float) -> float:
        """Nats per predicted step."""
        return nats / count if count > 0 else float("nan")


class TextSource:
    """PTB characters as contiguous lanes of next (or ``ahead``-th next) symbol prediction."""

    output = "softmax"

    def __init__(self, data, ahead: int = 1) -> None:
        self.data = data
        self.ahead = int(ahead)
        self.n_in = self.n_out = data.vocab_size

    def batches(self, split: str, batch_size: int, window: int, rng: int | None = None,
                device: str | torch.device = "cpu", by_length: bool = False) -> Iterator[Batch]:
        """Windows of ``split`` in contiguous lanes (``rng`` and ``by_length`` do not apply)."""
        for w in self.data.stream(split, batch_size, window, ahead=self.ahead):
            x = F.one_hot(w.x, self.n_in).to(torch.float32)            # [T,B,V]
            yield Batch(x.to(device), w.y.to(device), w.mask.to(device), None)

    def n_windows(self, split: str, batch_size: int, window: int, rng: int | None = None) -> int:
        """How many windows :meth:`batches` yields for the same arguments."""
        longest = -(-self.data.n_predictions(split, self.ahead) // batch_size)
        return -(-longest // window)

    def n_steps(self, split: str) -> int:
        """Predictions of ``split``."""
        return self.data.n_predictions(split, self.ahead)

    @staticmethod
    def to_measure(nats: float, count: float) -> float:
        """Bits per character."""
        return nats / (count * math.log(2)) if count > 0 else float("nan")


def load_source(dataset: str, data_dir: str | os.PathLike | None = None, *, cache: dict | None = None):
    """The data of one of :data:`DATASETS` as a :class:`MusicSource` or :class:`TextSource`.

    ``cache`` (a dict) shares the loaded PTB text between its two variants.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset.startswith("ptb"):
        from bptt.tasks.text import load_ptb_chars

        key = ("ptb", str(data_dir))
        if cache is not None and key in cache:
            text = cache[key]
        else:
            text = load_ptb_chars(data_dir)
            if cache is not None:
                cache[key] = text
        return TextSource(text, ahead=PROTOCOL[dataset]["ahead"])
    from bptt.tasks.music import load_music

    return MusicSource(load_music(dataset, data_dir))


@torch.no_grad()
def evaluate_split(model, source, split: str, *, batch_size: int = 32, window: int = 200,
                   max_windows: int | None = None) -> tuple[np.ndarray, int]:
    """Total loss in nats of every member over a split, forward only.

    The state is carried from window to window of a lane (zeroed where a new sequence
    starts), exactly as in training, so every step sees its whole past.

    Returns:
        ``(nats [E] float64, count)``: the summed loss and the number of predicted
        steps it covers (all of the split's unless ``max_windows`` stops early).
    """
    E, H = model.ensemble, model.state_size
    total = torch.zeros(E, dtype=torch.float64)
    count = 0
    h = None
    for k, b in enumerate(source.batches(split, batch_size, window, device=model.device, by_length=True)):
        if max_windows is not None and k >= max_windows:
            break
        if h is None:
            h = torch.zeros(E, b.x.shape[1], H, dtype=model.dtype, device=model.device)
        elif b.reset is not None and bool(b.reset.any()):
            h[:, b.reset] = 0.0
        ev = model.evaluate(b.x, b.y, h0=h, mask=b.mask)
        n = int(b.mask.sum().item())
        total += ev.loss.to("cpu", torch.float64) * n
        count += n
        h = ev.h_last
    return total.numpy(), count
