"""``bptt data download``: fetch the data sets from their original public locations.

Nothing is downloaded anywhere else: the loaders only read a data directory.
For each file of :mod:`bptt.data.registry` not already present with the
expected digest:

* a music ``.mat`` file is fetched from its address (then, without a mirror,
  from its listed copies) into ``<name>.part``, its SHA-256 compared with the
  embedded one, and only then renamed to its final name (an atomic
  :func:`os.replace`);
* the Penn Treebank files come from ``simple-examples.tgz``, fetched into
  ``ptb/simple-examples.tgz.part``; each needed member is extracted into its
  own ``.part`` file, checked and renamed; a character file that the archive
  lacks, or holds with other bytes, is made from its word-level file
  (:func:`bptt.data.ptb_chars.words_to_chars`) and checked the same way. The
  archive is removed once every file is in place.

A partial download is continued with an HTTP ``Range`` request, in the same
command when the connection breaks off and in the next one after an error;
a partial file whose completed bytes do not match is dropped and fetched once
more from the start. No file that failed its check is left under its final name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import registry
from .fetch import DEFAULT_TIMEOUT, ByteProgress, DownloadError, fetch, mirror_url
from .ptb_chars import convert_file
from .verify import file_status, sha256_file

__all__ = ["Outcome", "download", "DownloadError", "ARCHIVE_PART"]

#: Where the Penn Treebank archive is kept while it is fetched and unpacked.
ARCHIVE_PART = "ptb/simple-examples.tgz.part"


@dataclass(frozen=True)
class Outcome:
    """What :func:`download` did for one file.

    Attributes:
        path: The file, relative to the data directory.
        action: ``"present"`` (already there and verified), ``"downloaded"``,
            ``"extracted"`` (from the archive) or ``"derived"`` (made from its
            word-level file).
        source: The address it came from (``None`` when present or derived).
    """

    path: str
    action: str
    source: str | None = None


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _digest_mismatch(file: registry.DataFile, actual: str, origin: str) -> str:
    return f"{file.path} from {origin} has SHA-256 {actual}, expected {file.sha256}"


def download(
    datasets: Iterable[str] | str | None,
    data_dir: str | os.PathLike,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str, int | None, int], ByteProgress] | None = None,
    echo: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """Fetch the files of ``datasets`` into ``data_dir`` and verify every one.

    Args:
        datasets: Names from :func:`bptt.data.registry.dataset_names`
            (``"music"`` and ``"all"`` included); ``None`` for all.
        data_dir: The data directory; created if absent.
        base_url: A server laid out like the original locations (the path of
            each original address is appended to it); ``None`` for the originals.
        timeout: Seconds allowed for a name lookup, a connection or a read.
        progress: ``progress(label, total, initial)`` gives the display of one
            transfer; ``None`` shows none.
        echo: Called with one line per file as it is settled.

    Returns:
        One :class:`Outcome` per file, in table order.

    Raises:
        DownloadError: A host cannot be reached, or what it sent does not match
            the expected digests (the message names the file, the address and
            both digests); nothing unverified is left under a final name.
        ValueError: An unknown data set name.
    """
    if isinstance(datasets, str):
        datasets = [datasets]
    files = registry.files_of(None if datasets is None else list(datasets))
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    needed: list[registry.DataFile] = []
    for file in files:
        if file_status(root, file).ok:
            outcomes[file.path] = Outcome(file.path, "present")
            echo(f"ok          {file.path} (already present)")
        else:
            needed.append(file)
    opts = dict(base_url=base_url, timeout=timeout, progress=progress)
    for file in needed:
        if file.member is None:
            outcomes[file.path] = _fetch_single(root, file, **opts)
            echo(f"downloaded  {file.path}")
    archived = [f for f in needed if f.member is not None]
    if archived:
        for outcome in _fetch_from_archive(root, archived, **opts):
            outcomes[outcome.path] = outcome
            echo(f"{outcome.action:<11} {outcome.path}")
    return [outcomes[f.path] for f in files]


def _addresses(file: registry.DataFile, base_url: str | None) -> list[str]:
    if base_url:
        return [mirror_url(file.url, base_url)]
    return [file.url, *file.copies]


def _fetch_single(root: Path, file: registry.DataFile, *, base_url, timeout, progress) -> Outcome:
    """Fetch one plain file, trying its addresses in turn, and move it into place verified."""
    dest = root / file.path
    part = _part(dest)
    failures = []
    for url in _addresses(file, base_url):
        try:
            for fresh in (False, True):
                resumed = fetch(url, part, timeout=timeout, progress=progress, label=file.path)
                actual = sha256_file(part)
                if actual == file.sha256:
                    os.replace(part, dest)
                    return Outcome(file.path, "downloaded", url)
                part.unlink()
                if not resumed or fresh:
                    raise DownloadError(_digest_mismatch(file, actual, url))
        except DownloadError as exc:
            failures.append(str(exc))
    raise DownloadError(f"could not fetch {file.path}: " + "; then ".join(failures)
                        + f". Nothing was written under its final name {dest}.")


class _ArchiveProblem(Exception):
    """The archive is unreadable or holds a word-level file with other bytes."""


def _fetch_from_archive(root: Path, files: list[registry.DataFile], *, base_url, timeout,
                        progress) -> list[Outcome]:
    """Settle ``files`` (members of one archive): derive what can be derived, fetch the rest."""
    present = {f.path for f in registry.FILES if f.member is not None and file_status(root, f).ok}
    wanted = {f.path for f in files}
    # Character files whose word-level source is already here need no network.
    local = [f for f in files if f.derived_from in present]
    remote = [f for f in files if f not in local]
    outcomes = []
    if remote:
        url = mirror_url(remote[0].url, base_url)
        part = root / ARCHIVE_PART
        for fresh in (False, True):
            resumed = fetch(url, part, timeout=timeout, progress=progress, label=Path(ARCHIVE_PART).stem)
            try:
                outcomes, later = _unpack(root, part, remote, url)
                break
            except _ArchiveProblem as exc:
                part.unlink(missing_ok=True)
                if not resumed or fresh:
                    raise DownloadError(f"{exc}; the archive was removed (files already extracted from it "
                                        "passed their check; no other was kept)") from None
        part.unlink(missing_ok=True)
        local += later
    for file in local:
        outcomes.append(_derive(root, file))
    order = {f.path: i for i, f in enumerate(registry.FILES)}
    return sorted((o for o in outcomes if o.path in wanted), key=lambda o: order[o.path])


def _unpack(root: Path, archive: Path, files: list[registry.DataFile], url: str
            ) -> tuple[list[Outcome], list[registry.DataFile]]:
    """Extract ``files`` from ``archive`` verified; returns the outcomes and the files left to derive.

    A derivable file that the archive lacks or holds with other bytes is left
    to derive from its word-level file (one of ``files`` or already present).
    Raises :class:`_ArchiveProblem` when the archive cannot be read or
    a word-level file is absent from it or has other bytes.
    """
    targets = {f.member: f for f in files}
    outcomes, found = [], set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                file = targets.get(name)
                if file is None or not member.isfile():
                    continue
                found.add(name)
                actual = _extract(tar, member, _part(root / file.path))
                if actual == file.sha256:
                    os.replace(_part(root / file.path), root / file.path)
                    outcomes.append(Outcome(file.path, "extracted", url))
                    continue
                _part(root / file.path).unlink()
                if file.derived_from is None:
                    raise _ArchiveProblem(_digest_mismatch(file, actual, url))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _ArchiveProblem(f"{url} is not a readable .tgz archive ({exc})") from None
    done = {o.path for o in outcomes}
    for member, file in targets.items():
        if member not in found and file.derived_from is None:
            raise _ArchiveProblem(f"{url} does not hold {member} (for {file.path})")
    later = [f for f in files if f.path not in done]
    return outcomes, later


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> str:
    """Write one archive member to ``dest``; returns its SHA-256 (``dest`` is removed on failure)."""
    h = hashlib.sha256()
    source = tar.extractfile(member)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with source, open(dest, "wb") as out:
            while block := source.read(1 << 20):
                h.update(block)
                out.write(block)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return h.hexdigest()


def _derive(root: Path, file: registry.DataFile) -> Outcome:
    """Make a character file from its verified word-level file, check it, move it into place."""
    source = registry.get(file.derived_from)
    if not file_status(root, source).ok:
        raise DownloadError(f"cannot make {file.path}: its source {source.path} is missing or corrupt")
    part = _part(root / file.path)
    try:
        convert_file(root / source.path, part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    actual = sha256_file(part)
    if actual != file.sha256:
        part.unlink()
        raise DownloadError(_digest_mismatch(file, actual, f"the rule applied to {source.path}"))
    os.replace(part, root / file.path)
    return Outcome(file.path, "derived")
