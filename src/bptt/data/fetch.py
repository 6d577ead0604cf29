"""Fetching one file over HTTP(S) with the standard library, resumably.

:func:`fetch` writes to a ``.part`` file and, when the connection breaks off,
asks for the rest with an HTTP ``Range`` request (``bytes=<size>-``); a server
that ignores ranges (answers ``200``) is read again from the start. What the
bytes are worth is the caller's business (:mod:`bptt.data.download` compares
their SHA-256 with the embedded one before renaming the file into place).

Every network wait is bounded by ``timeout`` seconds: the name lookup, the
connection and each read, so an unreachable or silent host gives a
:class:`DownloadError` within about that time.
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TextIO
from urllib.parse import urlsplit

__all__ = [
    "DownloadError",
    "DEFAULT_TIMEOUT",
    "ByteProgress",
    "mirror_url",
    "fetch",
]

#: Seconds allowed for a name lookup, a connection or a read of the socket.
DEFAULT_TIMEOUT = 15.0
_CHUNK = 1 << 16
_USER_AGENT = "bptt-data/1 (Python urllib)"


class DownloadError(RuntimeError):
    """A download failed; the message says which address, why, and what to do."""


class ByteProgress:
    """The progress of one download.

    On a terminal a tqdm bar; otherwise (a log, a pipe) one line every
    ``interval`` seconds and one when done, so that logs stay readable.

    Args:
        label: What is being downloaded (shown on every line).
        total: Expected number of bytes, or ``None`` when unknown.
        initial: Bytes already there (a resumed download).
        stream: Where to write; ``sys.stderr`` by default.
        interval: Seconds between two lines when ``stream`` is not a terminal.
        enabled: ``False`` writes nothing.
    """

    def __init__(self, label: str, total: int | None, initial: int = 0, *, stream: TextIO | None = None,
                 interval: float = 5.0, enabled: bool = True):
        self.label, self.total, self.done = label, total, initial
        self.stream = stream if stream is not None else sys.stderr
        self.interval, self.enabled = interval, enabled
        self._bar = None
        self._last = time.monotonic()
        self._shown = initial
        if enabled and _is_tty(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=label, file=self.stream, dynamic_ncols=True, leave=True)

    def update(self, n: int) -> None:
        """Count ``n`` more bytes."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.interval:
            self._line()

    def close(self) -> None:
        """Finish the bar, or write the last line (unless the latest one says it already)."""
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and (self.done != self._shown or self.done == 0):
            self._line()

    def _line(self) -> None:
        self._last, self._shown = time.monotonic(), self.done
        text = f"{self.label}: {_megabytes(self.done)}"
        if self.total:
            text += f" of {_megabytes(self.total)} ({100 * self.done / self.total:.0f}%)"
        print(text, file=self.stream, flush=True)

    def __enter__(self) -> "ByteProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def mirror_url(url: str, base_url: str | None) -> str:
    """``url`` on the server ``base_url``, laid out like the original.

    The path of ``url`` (e.g. ``/~imikolov/rnnlm/simple-examples.tgz``) is
    appended to ``base_url`` (which may carry a path prefix of its own);
    ``None`` or ``""`` returns ``url`` unchanged.
    """
    if not base_url:
        return url
    return base_url.rstrip("/") + urlsplit(url).path


_RESOLVED: set[tuple[str, int]] = set()


def _check_resolvable(url: str, timeout: float) -> None:
    """Look up ``url``'s host within ``timeout`` seconds (the socket timeout does not cover it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"{url!r} is not an http:// or https:// address")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    key = (parts.hostname, port)
    if key in _RESOLVED:
        return
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise DownloadError(f"could not look up the host {parts.hostname} within {timeout:g} s "
                            f"(fetching {url}); check the network, or use a mirror (--base-url)")
    if outcome[0] is not None:
        raise DownloadError(f"could not look up the host {parts.hostname} ({outcome[0]}) fetching {url}; "
                            "check the network, or use a mirror (--base-url)")
    _RESOLVED.add(key)


def _content_range_start(header: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/n`` header, or ``None``."""
    if not header or not header.startswith("bytes "):
        return None
    try:
        return int(header[6:].split("-", 1)[0])
    except ValueError:
        return None


def _content_range_total(header: str | None) -> int | None:
    if not header or "/" not in header:
        return None
    tail = header.rsplit("/", 1)[1].strip()
    return int(tail) if tail.isdigit() else None


def _unreachable(url: str, reason: object, timeout: float) -> DownloadError:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        why = f"no answer within {timeout:g} s"
    else:
        why = str(reason)
    return DownloadError(f"could not reach {urlsplit(url).netloc} ({why}) fetching {url}; "
                         "check the network, or use a mirror (--base-url)")


ProgressFactory = Callable[[str, "int | None", int], ByteProgress]


def fetch(url: str, part: str | Path, *, timeout: float = DEFAULT_TIMEOUT, attempts: int = 4,
          progress: ProgressFactory | None = None, label: str | None = None) -> bool:
    """Download ``url`` into the file ``part``, continuing what it already holds.

    Args:
        url: An ``http://`` or ``https://`` address.
        part: The file to write. If it exists its bytes are kept and the rest is
            asked for with ``Range: bytes=<size>-``; a ``200`` answer (a server
            without ranges) starts it again, a ``416`` drops it and starts again.
        timeout: Seconds allowed for the name lookup, the connection and each read.
        attempts: Requests made in all while the connection keeps breaking off
            before the announced length is received.
        progress: ``progress(label, total, initial)`` gives a :class:`ByteProgress`;
            ``None`` shows none.
        label: The name shown by the progress display (default: the file name of ``url``).

    Returns:
        Whether the download continued bytes that were in ``part`` before the call
        (so a digest mismatch may come from an older partial file).

    Raises:
        DownloadError: The host cannot be looked up, reached or answers an HTTP
            error, a read waits longer than ``timeout`` (``part`` is kept for a
            later resume), or every attempt broke off.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    label = label or urlsplit(url).path.rsplit("/", 1)[-1] or url
    _check_resolvable(url, timeout)
    resumed_old = part.is_file() and part.stat().st_size > 0
    for _ in range(attempts):
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                part.unlink()
                resumed_old = False
                continue
            raise DownloadError(f"{url} answered HTTP {exc.code} ({exc.reason})") from None
        except urllib.error.URLError as exc:
            raise _unreachable(url, exc.reason, timeout) from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _unreachable(url, exc, timeout) from None
        with response:
            content_range = response.headers.get("Content-Range")
            if offset and response.status == 206 and _content_range_start(content_range) == offset:
                mode, start = "ab", offset
                total = _content_range_total(content_range)
            elif response.status == 200:
                mode, start = "wb", 0
                resumed_old = False
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            else:
                part.unlink(missing_ok=True)
                resumed_old = False
                continue
            complete = _copy_body(response, part, mode, start, total, url, timeout,
                                  progress(label, total, start) if progress else None)
        if complete:
            return resumed_old
    raise DownloadError(
        f"the connection to {urlsplit(url).netloc} broke off {attempts} times fetching {url}; "
        f"the partial file {part} is kept and the same command resumes it"
    )


def _copy_body(response, part: Path, mode: str, start: int, total: int | None, url: str, timeout: float,
               bar: ByteProgress | None) -> bool:
    """Append the response body to ``part``; whether all ``total`` bytes arrived."""
    done = start
    try:
        with open(part, mode) as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except TimeoutError:
                    raise DownloadError(
                        f"{urlsplit(url).netloc} sent nothing for {timeout:g} s fetching {url}; "
                        f"the partial file {part} is kept and the same command resumes it"
                    ) from None
                except (http.client.IncompleteRead, ConnectionError, OSError):
                    return False
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return total is None or done >= total
