"""What the commands of ``bptt`` share: opening the results store, SIGTERM as an
interrupt, the options several commands take, and library errors as clean messages."""

from __future__ import annotations

import functools
import signal
import sqlite3
from pathlib import Path
from typing import Callable

import click

STORE_HELP = "Results store (default $BPTT_STORE or ./bptt-results.sqlite)."


def open_store(path: str | None, *, must_exist: bool = False, read_only: bool = False):
    """The results store at ``path`` (default :func:`bptt.store.default_store_path`).

    Args:
        path: the ``--store`` option's value, or ``None``.
        must_exist: refuse a path where no store exists yet (commands that only read),
            instead of creating an empty one.
        read_only: open for reading only (commands that only read): the file must
            exist, and nothing is written to it.

    Returns:
        A :class:`bptt.store.Store`.

    Raises:
        click.ClickException: the file is missing (with ``must_exist``), is not a results
            store, or cannot be opened.
    """
    from bptt.store import Store, default_store_path

    p = Path(path) if path else default_store_path()
    if (must_exist or read_only) and not p.exists():
        raise click.ClickException(f"no results store at {p}; pass --store PATH or set $BPTT_STORE")
    try:
        return Store(p, read_only=read_only)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, sqlite3.OperationalError) as exc:
        raise click.ClickException(f"cannot open the results store at {p}: {exc}") from None


def sigterm_as_interrupt() -> None:
    """Make SIGTERM raise ``KeyboardInterrupt``, so that a killed command saves its
    checkpoints and exits the way Ctrl-C does."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → [0, 1, 2, 3, 4]; ``"1,5,9"`` → [1, 5, 9]; ranges and lists combine.

    Raises:
        click.BadParameter: the text is not such a list, or the seeds repeat or are negative.
    """
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of seeds like '0-4' or '0,3,7'") from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise click.BadParameter(f"seeds must be distinct and >= 0, got {text!r}")
    return seeds


# -- shared options ----------------------------------------------------------------------------------


def store_option(f: Callable) -> Callable:
    """``--store PATH``, passed as ``store_path``."""
    return click.option("--store", "store_path", help=STORE_HELP)(f)


def progress_option(f: Callable) -> Callable:
    """``--progress/--no-progress``, passed as ``progress``."""
    return click.option("--progress/--no-progress", default=True, show_default=True,
                        help="Show a progress bar on stderr.")(f)


def seeds_option(default: str, help: str) -> Callable[[Callable], Callable]:  # noqa: A002
    """``--seeds TEXT``, passed as ``seeds``; the command reads it with :func:`parse_seeds`."""
    return click.option("--seeds", default=default, show_default=True,
                        help=help + " Ranges and lists: '0-4' or '0,3,7'.")


def out_option(default: str | None, help: str) -> Callable[[Callable], Callable]:  # noqa: A002
    """``--out DIR``, passed as ``out_dir``."""
    return click.option("--out", "out_dir", default=default, show_default=default is not None,
                        type=click.Path(file_okay=False), help=help)


def check_device(ctx, param, value: str | None) -> str | None:  # noqa: ARG001
    """Click callback of ``--device``: a device torch knows and this machine has.

    Raises:
        click.BadParameter: not a device name, or CUDA (or MPS) asked for where there is none.
    """
    import torch

    if value is None:
        return value
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        raise click.BadParameter(f"{value!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise click.BadParameter(f"{value!r}: CUDA is not available on this machine (torch sees no GPU); "
                                     f"use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise click.BadParameter(f"{value!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                                     f"numbered from 0")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise click.BadParameter(f"{value!r}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise click.BadParameter(f"{value!r}: bptt trains on cpu, cuda or mps devices")
    return value


def library_errors(f: Callable) -> Callable:
    """Turn the library's ``ValueError`` and ``FileNotFoundError`` (bad input, missing
    files) into clean command-line errors instead of tracebacks."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (ValueError, FileNotFoundError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper
