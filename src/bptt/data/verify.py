"""Finding a data directory and checking its files against the embedded digests.

The expected SHA-256 of every file comes from :mod:`bptt.data.registry`, inside
the package; a data directory needs only the files, e.g.::

    data/
      music/JSB_Chorales.mat  music/Nottingham.mat  music/MuseData.mat  music/Piano_midi.mat
      ptb/ptb.train.txt  ptb/ptb.valid.txt  ptb/ptb.test.txt
      ptb/ptb.char.train.txt  ptb/ptb.char.valid.txt  ptb/ptb.char.test.txt

A ``SHA256SUMS`` file in the directory (``sha256sum`` format, paths relative to
the directory), when present, is checked for agreement with the embedded table
and never used instead of it.

Where the loaders look when no directory is given (:func:`default_data_dir`):

1. the environment variable ``BPTT_DATA``, if set;
2. otherwise the first ``shared/data`` folder found in the current working
   directory or one of its parents.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import registry

__all__ = [
    "SUMS_FILE",
    "FileStatus",
    "default_data_dir",
    "resolve_data_dir",
    "read_sums",
    "check_sums_file",
    "sha256_file",
    "file_status",
    "require",
    "verify",
    "clear_cache",
]

SUMS_FILE = "SHA256SUMS"


def default_data_dir() -> Path | None:
    """The data directory used when none is given, or ``None``.

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


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` as a :class:`Path`, or the default one; raises if there is none."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    found = default_data_dir()
    if found is None:
        raise FileNotFoundError(
            "no data directory given and none found: pass --data-dir, set BPTT_DATA, "
            f"or place the data in a 'shared/data' folder above {Path.cwd()}; "
            "fetch the data with: bptt data download --data-dir DIR"
        )
    return found


def read_sums(data_dir: str | os.PathLike) -> dict[str, str]:
    """Parse ``<data_dir>/SHA256SUMS`` into ``{relative_path: hex_digest}``.

    Raises :class:`FileNotFoundError` when the file is absent and
    :class:`ValueError` (with the line number) on a malformed line.
    """
    sums_path = Path(data_dir) / SUMS_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(f"{SUMS_FILE} not found in data directory {data_dir}")
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


def check_sums_file(data_dir: str | os.PathLike) -> None:
    """Check that ``<data_dir>/SHA256SUMS``, if present, agrees with the embedded table.

    Lines naming files the package does not know are ignored. Raises
    :class:`ValueError` naming the first file whose listed digest differs from
    the embedded one, with both digests.
    """
    data_dir = Path(data_dir)
    if not (data_dir / SUMS_FILE).is_file():
        return
    for rel, listed in read_sums(data_dir).items():
        try:
            expected = registry.get(rel).sha256
        except KeyError:
            continue
        if listed != expected:
            raise ValueError(
                f"{data_dir / SUMS_FILE} disagrees with this package about {rel!r}: it lists "
                f"SHA-256 {listed}, the package expects {expected}; the directory holds another "
                f"version of the file. Fetch the expected one with: "
                f"{registry.download_command(registry.get(rel).dataset, data_dir)}"
            )


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's content, lower-case hex."""
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


@dataclass(frozen=True)
class FileStatus:
    """The state of one data file in a directory.

    Attributes:
        file: Its registry entry.
        path: Where it was looked for.
        state: ``"ok"``, ``"missing"`` or ``"corrupt"``.
        actual: The SHA-256 found when ``state`` is ``"corrupt"``, else ``None``.
    """

    file: registry.DataFile
    path: Path
    state: str
    actual: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def file_status(data_dir: str | os.PathLike, file: registry.DataFile) -> FileStatus:
    """Hash ``file`` in ``data_dir`` (unless cached) and compare it with its expected digest.

    A file that passed is not hashed again in this process while its path,
    mtime and size stay the same.
    """
    path = Path(data_dir) / file.path
    if not path.is_file():
        return FileStatus(file, path, "missing")
    st = path.stat()
    cache_key = (str(path.resolve()), st.st_mtime_ns, st.st_size, file.sha256)
    if cache_key in _VERIFIED:
        return FileStatus(file, path, "ok")
    actual = sha256_file(path)
    if actual != file.sha256:
        return FileStatus(file, path, "corrupt", actual)
    _VERIFIED.add(cache_key)
    return FileStatus(file, path, "ok")


def _entries(relative_paths: Iterable[str | os.PathLike]) -> list[registry.DataFile]:
    entries = []
    for rel in relative_paths:
        try:
            entries.append(registry.get(rel))
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    return entries


def _missing_error(data_dir: Path, file: registry.DataFile) -> FileNotFoundError:
    where = "" if data_dir.is_dir() else f" (the directory {data_dir} does not exist)"
    return FileNotFoundError(
        f"data file {file.path!r} is missing: looked for {data_dir / file.path}{where}. "
        f"Fetch it with: {registry.download_command(file.dataset, data_dir)} "
        "(or pass --data-dir / set BPTT_DATA to the folder that holds it)"
    )


def require(data_dir: str | os.PathLike, relative_paths: Iterable[str | os.PathLike]) -> None:
    """Check only that the named files exist in ``data_dir``.

    Raises :class:`FileNotFoundError` naming the first missing file, where it
    was looked for and the command that fetches it; :class:`ValueError` for a
    path the package does not know.
    """
    data_dir = Path(data_dir)
    for file in _entries(relative_paths):
        if not (data_dir / file.path).is_file():
            raise _missing_error(data_dir, file)


def verify(data_dir: str | os.PathLike, relative_paths: Iterable[str | os.PathLike]) -> None:
    """Check the named files of ``data_dir`` against the embedded digests.

    Raises :class:`FileNotFoundError` (naming the file, where it was looked for
    and the command that fetches it) when a file is absent;
    :class:`ValueError` (naming the file, the expected and the actual digest)
    when its content does not match, when the directory's own ``SHA256SUMS``
    disagrees with the embedded table, or for a path the package does not know.
    """
    data_dir = Path(data_dir)
    entries = _entries(relative_paths)
    check_sums_file(data_dir)
    for file in entries:
        status = file_status(data_dir, file)
        if status.state == "missing":
            raise _missing_error(data_dir, file)
        if status.state == "corrupt":
            raise ValueError(
                f"data file {file.path!r} in {data_dir} is corrupt: SHA-256 expected "
                f"{file.sha256}, actual {status.actual}. Fetch it again with: "
                f"{registry.download_command(file.dataset, data_dir)}"
            )
