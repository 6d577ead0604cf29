"""``bptt data verify`` and the checks the loaders make."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.data import registry, verify
from data_server import DATA_DIR, HAVE_DATA, NO_DATA

needs_data = pytest.mark.skipif(not HAVE_DATA, reason=NO_DATA)


def copy_music(dest):
    (dest / "music").mkdir(parents=True)
    for file in registry.files_of("music"):
        shutil.copyfile(DATA_DIR / file.path, dest / file.path)


@needs_data
def test_a_complete_directory_passes():
    result = CliRunner().invoke(main, ["data", "verify", "--data-dir", str(DATA_DIR)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[: len(registry.FILES)] == [f"ok       {f.path}" for f in registry.FILES]
    assert f"{len(registry.FILES)} of {len(registry.FILES)} files ok" in lines[-1]


@needs_data
def test_missing_and_corrupt_files_are_reported(tmp_path):
    copy_music(tmp_path)
    (tmp_path / "music" / "Nottingham.mat").unlink()
    corrupt = tmp_path / "music" / "MuseData.mat"
    raw = bytearray(corrupt.read_bytes())
    raw[100] ^= 0xFF
    corrupt.write_bytes(bytes(raw))
    actual = verify.sha256_file(corrupt)
    result = CliRunner().invoke(main, ["data", "verify", "--data-dir", str(tmp_path), "--dataset", "music"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "ok       music/JSB_Chorales.mat" in lines and "ok       music/Piano_midi.mat" in lines
    assert any(line.startswith("missing  music/Nottingham.mat") for line in lines)
    corrupt_line = next(line for line in lines if line.startswith("corrupt  music/MuseData.mat"))
    assert registry.get("music/MuseData.mat").sha256 in corrupt_line and actual in corrupt_line
    assert "2 of 4 files ok" in result.output
    assert f"bptt data download --dataset musedata --dataset nottingham --data-dir {tmp_path}" in result.output


@needs_data
def test_a_disagreeing_sha256sums_fails_verification(tmp_path):
    copy_music(tmp_path)
    rel = "music/Piano_midi.mat"
    (tmp_path / "SHA256SUMS").write_text(f"{'ab' * 32}  {rel}\n{'cd' * 32}  README.md\n")
    result = CliRunner().invoke(main, ["data", "verify", "--data-dir", str(tmp_path), "--dataset", "music"])
    assert result.exit_code == 1
    assert rel in result.output and "ab" * 32 in result.output
    assert registry.get(rel).sha256 in result.output
    # A SHA256SUMS that agrees (and lists a file the package ignores) is fine.
    (tmp_path / "SHA256SUMS").write_text(f"{registry.get(rel).sha256}  {rel}\n{'cd' * 32}  README.md\n")
    ok = CliRunner().invoke(main, ["data", "verify", "--data-dir", str(tmp_path), "--dataset", "music"])
    assert ok.exit_code == 0, ok.output


@needs_data
def test_verification_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    copy_music(tmp_path)
    file = registry.get("music/JSB_Chorales.mat")
    hashed = []
    real = verify.sha256_file
    monkeypatch.setattr(verify, "sha256_file", lambda p: hashed.append(p) or real(p))
    verify.clear_cache()
    verify.verify(tmp_path, [file.path])
    verify.verify(tmp_path, [file.path])
    assert len(hashed) == 1
    path = tmp_path / file.path
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="JSB_Chorales.mat"):
        verify.verify(tmp_path, [file.path])
    assert len(hashed) == 2


def test_messages_name_flags_not_arguments(tmp_path, monkeypatch):
    monkeypatch.delenv("BPTT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        verify.resolve_data_dir(None)
    assert "--data-dir" in str(err.value) and "data_dir" not in str(err.value).replace("--data-dir", "")
    with pytest.raises(FileNotFoundError) as err:
        verify.verify(tmp_path / "nowhere", ["ptb/ptb.char.test.txt"])
    msg = str(err.value)
    assert "does not exist" in msg and "bptt data download --dataset ptb" in msg
    assert "verify=" not in msg
    with pytest.raises(ValueError, match="not a data file"):
        verify.verify(tmp_path, ["music/Bach.mat"])
