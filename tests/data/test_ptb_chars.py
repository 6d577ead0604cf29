"""The rule that makes the character-level Penn Treebank files from the word-level ones."""

from __future__ import annotations

import pytest

from bptt.data.ptb_chars import convert_file, words_to_chars
from data_server import DATA_DIR

needs_ptb = pytest.mark.skipif(
    not all((DATA_DIR / "ptb" / f"ptb.{k}{s}.txt").is_file() for k in ("", "char.") for s in ("train", "valid", "test")),
    reason=f"the Penn Treebank files are not in {DATA_DIR / 'ptb'}",
)


def test_handmade_lines():
    assert words_to_chars(" the cat \n") == "t h e _ c a t \n "
    assert words_to_chars("a  b\n\nc d\n") == "a _ b \n \n c _ d \n "
    assert words_to_chars("<unk> N\n") == "< u n k > _ N \n "
    assert words_to_chars("no line end") == "n o _ l i n e _ e n d "
    assert words_to_chars("") == ""


@needs_ptb
@pytest.mark.parametrize("split", ["valid", "test", "train"])
def test_the_rule_reproduces_the_files_byte_for_byte(split, tmp_path):
    out = tmp_path / f"ptb.char.{split}.txt"
    convert_file(DATA_DIR / "ptb" / f"ptb.{split}.txt", out)
    assert out.read_bytes() == (DATA_DIR / "ptb" / f"ptb.char.{split}.txt").read_bytes()
