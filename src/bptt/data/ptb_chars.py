"""The character-level Penn Treebank files, made from the word-level ones.

Mikolov's ``simple-examples`` release writes the character version of a
word-level file (one sentence a line, words separated by spaces) as follows:
in every line the words are joined by ``_`` (leading, trailing and repeated
spaces vanish), the line end stays, and then every character of the result,
line ends included, is followed by one space. The line ``" the cat \\n"``
becomes ``"t h e _ c a t \\n "``.

This rule maps the released ``ptb.valid.txt`` and ``ptb.test.txt`` onto
``ptb.char.valid.txt`` and ``ptb.char.test.txt`` byte for byte; applied to
``ptb.train.txt`` it gives the ``ptb.char.train.txt`` whose digest
:mod:`bptt.data.registry` lists.
"""

from __future__ import annotations

import os

__all__ = ["words_to_chars", "convert_file"]


def words_to_chars(text: str) -> str:
    """The character-level form of a word-level text.

    Args:
        text: Word-level text, one sentence a line (``\\n`` line ends).

    Returns:
        Each line's words joined by ``_``, every character of the result
        (``\\n`` included) followed by one space. A last line without a line
        end gives its characters only.
    """
    lines = text.split("\n")
    joined = "\n".join("_".join(line.split()) for line in lines)
    if not joined:
        return ""
    return " ".join(joined) + " "


def convert_file(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Write the character-level form of the word-level file ``src`` to ``dest``.

    Both files are UTF-8 with ``\\n`` line ends, written without translation.
    """
    with open(src, encoding="utf-8", newline="") as f:
        text = f.read()
    with open(dest, "w", encoding="utf-8", newline="") as f:
        f.write(words_to_chars(text))
