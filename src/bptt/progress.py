"""The one progress bar of every command: a live tqdm bar on a terminal, and in a log
file or a pipe one plain line every few seconds (and one at the end) instead of a
redraw per update."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.std import tqdm as _tqdm

#: Seconds between two lines when the bar is not on a terminal.
LOG_INTERVAL_S = 5.0


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(*, file: TextIO | None = None, interval: float = LOG_INTERVAL_S, **kwargs: Any):
    """A progress bar (the arguments of ``tqdm``) on ``file`` (default ``sys.stderr``).

    Args:
        file: where the bar goes.
        interval: seconds between two lines when ``file`` is not a terminal.
        **kwargs: passed to ``tqdm`` (``total``, ``desc``, ``disable``, ``unit`` ...).

    Returns:
        A ``tqdm`` object: ``tqdm.auto``'s bar on a terminal; otherwise one that writes a
        whole line at most every ``interval`` seconds, however often it is updated or
        its postfix is set, and a last line when closed.
    """
    stream = file if file is not None else sys.stderr
    if is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(file=stream, **kwargs)
    kwargs.pop("dynamic_ncols", None)
    kwargs.setdefault("ncols", 100)
    return _LogBar(file=_Lines(stream), mininterval=interval, **kwargs)


class _Lines:
    """A stream that turns a bar's redraws (``\\r`` + text) into lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(_tqdm):
    """A tqdm bar that redraws (writes a line) at most every ``mininterval`` seconds."""

    _last_line = -float("inf")

    def refresh(self, nolock: bool = False, lock_args: Any = None) -> None:
        if self.disable:
            return
        now = time.monotonic()
        if now - self._last_line < self.mininterval:
            return
        self._last_line = now
        super().refresh(nolock=nolock, lock_args=lock_args)
