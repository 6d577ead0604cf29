"""``bptt data download`` against a local server laid out like the original locations."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.data import registry
from bptt.data.download import ARCHIVE_PART, download
from bptt.data.fetch import DownloadError
from bptt.data.verify import clear_cache, file_status

from data_server import DATA_DIR, HAVE_DATA, NO_DATA, server_path

MUSE = registry.get("music/MuseData.mat")
JSB = registry.get("music/JSB_Chorales.mat")
ARCHIVE = server_path(registry.PTB_ARCHIVE)


def run(*args: str):
    return CliRunner().invoke(main, ["data", *args])


def fetch_cli(server, data_dir: Path, *datasets: str, extra: tuple[str, ...] = ()):
    args = ["download", "--data-dir", str(data_dir), "--base-url", server.url, "--no-progress", *extra]
    for name in datasets:
        args += ["--dataset", name]
    return run(*args)


def assert_verified(data_dir: Path, files) -> None:
    clear_cache()
    for file in files:
        assert file_status(data_dir, file).ok, file.path


def leftovers(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*.part"))


def test_a_full_download_verifies(server, tmp_path):
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir)
    assert result.exit_code == 0, result.output
    assert_verified(data_dir, registry.FILES)
    assert leftovers(data_dir) == []
    # The archive's ptb.char.train.txt has other bytes: that file was made from ptb.train.txt.
    assert "derived     ptb/ptb.char.train.txt" in result.output
    assert "extracted   ptb/ptb.char.valid.txt" in result.output
    # The digests agree with the shipped table, so `bptt data verify` passes too.
    verify = run("verify", "--data-dir", str(data_dir))
    assert verify.exit_code == 0, verify.output
    # A second run finds everything in place and asks the server nothing.
    before = len(server.requests)
    again = fetch_cli(server, data_dir)
    assert again.exit_code == 0 and len(server.requests) == before
    assert again.output.count("already present") == len(registry.FILES)


def test_a_corrupt_server_file_is_refused(server, tmp_path):
    path = server.root / server_path(JSB.url)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x20
    path.unlink()
    path.write_bytes(bytes(raw))
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir, "jsb_chorales")
    assert result.exit_code != 0
    assert "JSB_Chorales.mat" in result.output
    assert JSB.sha256 in result.output and hashlib.sha256(bytes(raw)).hexdigest() in result.output
    assert "Traceback" not in result.output
    assert not (data_dir / JSB.path).exists()
    assert leftovers(data_dir) == []


def test_a_corrupt_word_file_in_the_archive_is_refused(server, tmp_path, originals):
    import io
    import tarfile

    with tarfile.open(originals / ARCHIVE, "r:gz") as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    path = server.root / ARCHIVE
    path.unlink()
    with tarfile.open(path, "w:gz", compresslevel=1) as out:
        for member, data in members:
            if member.name.endswith("/ptb.valid.txt"):
                data = data.replace(b" the ", b" a ", 1)
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir, "ptb")
    assert result.exit_code != 0
    assert "ptb.valid.txt" in result.output and registry.get("ptb/ptb.valid.txt").sha256 in result.output
    assert not (data_dir / "ptb" / "ptb.valid.txt").exists()
    assert not (data_dir / ARCHIVE_PART).exists() and leftovers(data_dir) == []


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_an_interrupted_download_ends_verified(server, tmp_path, ranges):
    server.ranges = ranges
    rel = server_path(MUSE.url)
    server.cut_after[rel] = 300_000
    server.cuts_left[rel] = 1
    server.cut_after[ARCHIVE] = 500_000
    server.cuts_left[ARCHIVE] = 1
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir, "musedata", "ptb")
    assert result.exit_code == 0, result.output
    assert_verified(data_dir, registry.files_of(["musedata", "ptb"]))
    assert leftovers(data_dir) == []
    # The second request asks for the rest; a server without ranges sends it all again.
    assert server.ranges_asked(rel) == [None, "bytes=300000-"]
    assert server.ranges_asked(ARCHIVE) == [None, "bytes=500000-"]


def test_a_range_less_server_works(server, tmp_path):
    server.ranges = False
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir, "music")
    assert result.exit_code == 0, result.output
    assert_verified(data_dir, registry.files_of("music"))


def test_a_download_that_keeps_breaking_resumes_in_the_next_command(server, tmp_path):
    rel = server_path(MUSE.url)
    server.cut_after[rel] = 100_000
    server.cuts_left[rel] = 10**6
    data_dir = tmp_path / "data"
    first = fetch_cli(server, data_dir, "musedata")
    assert first.exit_code != 0
    assert "broke off" in first.output and "resumes" in first.output
    part = data_dir / "music" / "MuseData.mat.part"
    kept = part.stat().st_size
    assert kept == 400_000  # four attempts, each continuing the last
    assert not (data_dir / MUSE.path).exists()
    server.cuts_left[rel] = 0
    second = fetch_cli(server, data_dir, "musedata")
    assert second.exit_code == 0, second.output
    assert server.ranges_asked(rel)[-1] == f"bytes={kept}-"
    assert_verified(data_dir, [MUSE])
    assert leftovers(data_dir) == []


def test_a_stale_partial_file_is_cleaned(server, tmp_path):
    data_dir = tmp_path / "data"
    part = data_dir / "music" / "MuseData.mat.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x00" * 5000)  # not the start of the file
    result = fetch_cli(server, data_dir, "musedata")
    assert result.exit_code == 0, result.output
    assert server.ranges_asked(server_path(MUSE.url)) == ["bytes=5000-", None]
    assert_verified(data_dir, [MUSE])
    assert leftovers(data_dir) == []


def test_the_mirror_comes_from_the_environment(server, tmp_path):
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(main, ["data", "download", "--data-dir", str(data_dir), "--dataset",
                                       "jsb_chorales", "--no-progress"], env={"BPTT_DATA_MIRROR": server.url})
    assert result.exit_code == 0, result.output
    assert server.ranges_asked(server_path(JSB.url)) == [None]
    assert_verified(data_dir, [JSB])


def test_character_files_are_made_locally_without_the_network(tmp_path):
    if not HAVE_DATA:
        pytest.skip(NO_DATA)
    data_dir = tmp_path / "data"
    (data_dir / "ptb").mkdir(parents=True)
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (data_dir / "ptb" / name).symlink_to(DATA_DIR / "ptb" / name)
    outcomes = download("ptb", data_dir, base_url=f"http://127.0.0.1:{_closed_port()}")
    actions = {o.path: o.action for o in outcomes}
    assert actions["ptb/ptb.char.train.txt"] == actions["ptb/ptb.char.test.txt"] == "derived"
    assert actions["ptb/ptb.train.txt"] == "present"
    assert_verified(data_dir, registry.files_of("ptb"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_address_fails_fast(tmp_path):
    data_dir = tmp_path / "data"
    start = time.monotonic()
    result = CliRunner().invoke(main, ["data", "download", "--data-dir", str(data_dir), "--dataset",
                                       "jsb_chorales", "--no-progress", "--base-url",
                                       f"http://127.0.0.1:{_closed_port()}"])
    assert time.monotonic() - start < 10
    assert result.exit_code == 1
    assert "could not reach 127.0.0.1" in result.output and "--base-url" in result.output
    assert "Traceback" not in result.output
    assert not (data_dir / JSB.path).exists() and leftovers(data_dir) == []


def test_a_silent_server_times_out(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # connections queue but nobody answers
    accepted = []
    stop = threading.Event()

    def hold():  # accept and say nothing
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"no answer within 1 s"):
            download("jsb_chorales", tmp_path / "data", timeout=1.0,
                     base_url=f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert time.monotonic() - start < 8
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_an_unknown_dataset_is_a_usage_error(tmp_path):
    result = run("download", "--data-dir", str(tmp_path), "--dataset", "mnist")
    assert result.exit_code == 2 and "mnist" in result.output


def test_a_truncated_archive_is_refused_and_removed(server, tmp_path, originals):
    path = server.root / ARCHIVE
    path.unlink()
    path.write_bytes((originals / ARCHIVE).read_bytes()[:200_000])
    data_dir = tmp_path / "data"
    result = fetch_cli(server, data_dir, "ptb")
    assert result.exit_code == 1
    assert "not a readable .tgz archive" in result.output and "Traceback" not in result.output
    assert not (data_dir / ARCHIVE_PART).exists() and leftovers(data_dir) == []
    assert not any((data_dir / f.path).exists() for f in registry.files_of("ptb"))
