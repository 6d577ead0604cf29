"""The protocol tables of docs/ are the ones the code generates (so they cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from bptt.experiments.protocol_table import documented, rows, table1_rows
from bptt.experiments.registry import get

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARKED = re.compile(r"<!-- protocol (\S+) -->\n(.*?)\n<!-- /protocol -->", re.S)


def _tables() -> dict[str, str]:
    found = {}
    for doc in ("reproductions.md", "table1.md", "remedies.md"):
        for key, text in MARKED.findall((DOCS / doc).read_text()):
            assert key not in found, f"two tables marked {key}"
            found[key] = text
    return found


def test_every_documented_protocol_table_is_the_generated_one():
    generated = documented()
    found = _tables()
    assert sorted(found) == sorted(generated), "regenerate: python -m bptt.experiments.protocol_table"
    for key, text in generated.items():
        assert found[key] == text, f"docs table {key} differs from the code's; regenerate it"


def test_the_tables_read_the_settings_that_run():
    f7 = get("figure7")
    table = {s: (v, src) for s, v, src in rows("figure7", f7.budget("full"))}
    assert table["α (weight of Ω)"][0].startswith("4,") and "default is 2" in table["α (weight of Ω)"][1]
    assert table["update cap"] == ("5,000,000 per run", "reference code (RNN.py)")
    assert "every 100 updates" in table["success check"][0]
    quick = {s: (v, src) for s, v, src in rows("figure7", f7.budget("quick"))}
    assert quick["update cap"][1].startswith("our choice") and quick["seeds"][0] == "2 per configuration"
    t1 = {s: v for s, v, _ in table1_rows("full", alpha_time="updates", guard="always")}
    assert t1["how t of α_t counts"] == "updates, from 1" and t1["non-finite guard"] == "all three methods"
