"""Locating the benchmark data and checking it against ``SHA256SUMS``.

The data sets are never shipped with the package. A data directory holds a
``SHA256SUMS`` file (``sha256sum`` format, paths relative to the directory) and
the files it lists, e.g.::

    data/
      SHA256SUMS
      music/JSB_Chorales.mat  music/Nottingham.mat  music/MuseData.mat  music/Piano_midi.mat
      ptb/ptb.char.train.txt  ptb/ptb.char.valid.txt  ptb/ptb.char.test.txt  ...

Where the loaders look when no directory is given (:func:`default_data_dir`):

1. the environment variable ``BPTT_DATA``, if set;
2. otherwise the first ``shared/data`` folder found in the current working
   directory or one of its parents (a checkout at ``/x/repo`` next to
   ``/x/shared/data`` finds it when run from anywhere inside ``/x/repo``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

__all__ = [
    "DEFAULT_DATA_DIR",
    "SUMS_FILE",
    "default_data_dir",
    "resolve_data_dir",
    "read_sums",
    "source_hint",
    "verify",
    "clear_cache",
]

SUMS_FILE = "SHA256SUMS"

MUSIC_SOURCE = (
    "the polyphonic music data sets of Boulanger-Lewandowski, Bengio & Vincent "
    "(ICML 2012), distributed as JSB_Chorales.mat, Nottingham.mat, MuseData.mat and "
    "Piano_midi.mat at http://www-etud.iro.umontreal.ca/~boulanni/icml2012 ; "
    "place them under <data_dir>/music/"
)
PTB_SOURCE = (
    "Mikolov's Penn Treebank 'simple-examples' release "
    "(http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz), files "
    "simple-examples/data/ptb.*.txt ; place them under <data_dir>/ptb/"
)


def source_hint(relative_path: str | os.PathLike) -> str:
    """Where a user can obtain the file ``relative_path`` of a data directory."""
    name = Path(relative_path).name
    parts = Path(relative_path).parts
    if name.endswith(".mat") or (parts and parts[0] == "music"):
        return MUSIC_SOURCE
    if name.startswith("ptb") or (parts and parts[0] == "ptb"):
        return PTB_SOURCE
    return "the source listed in the data directory's README"


def default_data_dir() -> Path | None:
    """The data directory used when a loader is given none, or ``None``.

    ``$BPTT_DATA`` wins if set; otherwise the first ``shared/data`` directory
    in the current working directory or any of its parents.
    """
    env = os.environ.get("BPTT_DATA")
    if env:
        return Path(env).expanduser()
    cwd = Path.cwd().resolve()
    for base in (cwd, *cwd.parents):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


#: The default data directory as found when the module was imported (may be
#: ``None``). Loaders re-run :func:`default_data_dir` at call time, so setting
#: ``BPTT_DATA`` later still takes effect.
DEFAULT_DATA_DIR: Path | None = default_data_dir()


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` as a :class:`Path`, or the default one; raises if there is none."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    found = default_data_dir()
    if found is None:
        raise FileNotFoundError(
            "no data directory given and none found: pass data_dir, set BPTT_DATA, "
            f"or place the data in a 'shared/data' folder above {Path.cwd()}"
        )
    return found


def read_sums(data_dir: str | os.PathLike) -> dict[str, str]:
    """Parse ``<data_dir>/SHA256SUMS`` into ``{relative_path: hex_digest}``."""
    data_dir = Path(data_dir)
    sums_path = data_dir / SUMS_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(
            f"{SUMS_FILE} not found in data directory {data_dir}; it lists the "
            "expected SHA-256 of every data file (pass verify=False to skip checking)"
        )
    sums: dict[str, str] = {}
    for line_no, line in enumerate(sums_path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, sep, name = line.partition(" ")
        if not sep or len(digest) != 64:
            raise ValueError(f"{sums_path}:{line_no}: malformed line {line!r}")
        name = name.strip()
        if name.startswith("*"):  # binary-mode marker of sha256sum
            name = name[1:]
        sums[Path(name).as_posix()] = digest.lower()
    return sums


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# (resolved path, mtime_ns, size, expected digest) of files already found good.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def clear_cache() -> None:
    """Forget which files were already verified in this process."""
    _VERIFIED.clear()


def verify(data_dir: str | os.PathLike, relative_paths: Iterable[str | os.PathLike]) -> None:
    """Check the named files of ``data_dir`` against its ``SHA256SUMS``.

    Raises :class:`FileNotFoundError` (naming the file, the directory and where
    to get it) when a file is absent, and :class:`ValueError` (naming the file,
    the expected and the actual digest) when its content does not match, or
    when it is not listed in ``SHA256SUMS``. A file that passed is not hashed
    again in this process while its path, mtime and size stay the same.
    """
    data_dir = Path(data_dir)
    sums = read_sums(data_dir)
    for rel in relative_paths:
        key = Path(rel).as_posix()
        path = data_dir / key
        if not path.is_file():
            raise FileNotFoundError(
                f"data file {key!r} is missing from data directory {data_dir}; "
                f"get it from {source_hint(key)}"
            )
        if key not in sums:
            raise ValueError(
                f"data file {key!r} is not listed in {data_dir / SUMS_FILE}"
            )
        expected = sums[key]
        st = path.stat()
        cache_key = (str(path.resolve()), st.st_mtime_ns, st.st_size, expected)
        if cache_key in _VERIFIED:
            continue
        actual = _sha256(path)
        if actual != expected:
            raise ValueError(
                f"data file {key!r} in {data_dir} is corrupt: SHA-256 expected "
                f"{expected}, actual {actual}; fetch it again from {source_hint(key)}"
            )
        _VERIFIED.add(cache_key)
