"""Locating the benchmark data and checking it, as the task loaders see it.

The checks themselves live in :mod:`bptt.data.verify` (expected digests embedded
in :mod:`bptt.data.registry`); this module gives the loaders their names and
the default data directory found at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from bptt.data import registry
from bptt.data.verify import (
    SUMS_FILE,
    check_sums_file,
    clear_cache,
    default_data_dir,
    read_sums,
    require,
    resolve_data_dir,
    verify,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "SUMS_FILE",
    "default_data_dir",
    "resolve_data_dir",
    "read_sums",
    "check_sums_file",
    "source_hint",
    "require",
    "verify",
    "clear_cache",
]

#: The default data directory as found when the module was imported (may be
#: ``None``). Loaders re-run :func:`default_data_dir` at call time, so setting
#: ``BPTT_DATA`` later still takes effect.
DEFAULT_DATA_DIR: Path | None = default_data_dir()


def source_hint(relative_path: str | os.PathLike) -> str:
    """Where the data file ``relative_path`` comes from and the command that fetches it."""
    file = registry.get(relative_path)
    origin = file.url if file.member is None else f"{file.member} in {file.url}"
    return f"{origin} (fetch it with: bptt data download --dataset {file.dataset})"
