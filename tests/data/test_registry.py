"""The table of data files shipped in the package."""

from __future__ import annotations

import pytest

from bptt.data import registry
from bptt.data.verify import read_sums
from data_server import DATA_DIR


def test_every_loader_file_is_listed():
    from bptt.tasks.music import MUSIC_FILES
    from bptt.tasks.text import PTB_CHAR_FILES

    for rel in [*MUSIC_FILES.values(), *PTB_CHAR_FILES.values()]:
        assert registry.get(rel).path == rel
    assert set(registry.MUSIC_DATASETS) == set(MUSIC_FILES)


@pytest.mark.skipif(not (DATA_DIR / "SHA256SUMS").is_file(), reason=f"no SHA256SUMS in {DATA_DIR}")
def test_the_table_agrees_with_the_reference_directory():
    sums = read_sums(DATA_DIR)
    assert sums == {f.path: f.sha256 for f in registry.FILES}
    for file in registry.FILES:
        if (DATA_DIR / file.path).is_file():
            assert (DATA_DIR / file.path).stat().st_size == file.size, file.path


def test_every_file_has_a_public_origin():
    for file in registry.FILES:
        assert file.url.startswith("http://") or file.url.startswith("https://")
        assert len(file.sha256) == 64 and int(file.sha256, 16) >= 0
        if file.member is not None:
            assert file.url == registry.PTB_ARCHIVE and file.member.endswith("/" + file.name)
        if file.derived_from is not None:
            assert registry.get(file.derived_from).dataset == file.dataset


def test_dataset_selection():
    assert [f.dataset for f in registry.files_of("ptb")] == ["ptb"] * 6
    assert {f.dataset for f in registry.files_of("music")} == set(registry.MUSIC_DATASETS)
    assert registry.files_of("all") == registry.files_of(None) == list(registry.FILES)
    assert [f.path for f in registry.files_of(["nottingham"])] == ["music/Nottingham.mat"]
    with pytest.raises(ValueError, match="mnist.*jsb_chorales"):
        registry.files_of("mnist")
    with pytest.raises(KeyError, match="not a data file"):
        registry.get("music/Bach.mat")


def test_download_command():
    assert registry.download_command("ptb", "/d") == "bptt data download --dataset ptb --data-dir /d"
    assert registry.download_command(["ptb", "ptb"], "/a b") == "bptt data download --dataset ptb --data-dir '/a b'"
    assert registry.download_command(list(registry.MUSIC_DATASETS), None) == "bptt data download --dataset music"
    everything = [*registry.MUSIC_DATASETS, "ptb"]
    assert registry.download_command(everything, "/d") == "bptt data download --dataset all --data-dir /d"


def test_the_data_guide_lists_every_file():
    from data_server import REPO

    guide = (REPO / "docs" / "data.md").read_text()
    for file in registry.FILES:
        row = next(line for line in guide.splitlines() if line.startswith(f"| `{file.path}` |"))
        assert file.sha256 in row and f"{file.size:,}" in row and file.dataset in row
        if file.member is None:
            assert file.url in row
