"""What an experiment hands to its report: tables, comparisons with the paper's numbers,
claim checks and figures (:class:`Analysis`), and the small formatters they share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bptt.experiments import paper


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Comparison:
    """One number of ours beside the paper's."""

    quantity: str
    ours: str
    paper: str
    verdict: str          # "matches", "differs", "not comparable", "pending"


@dataclass
class ClaimCheck:
    claim: paper.Claim
    verdict: str          # "holds", "does not hold", "not tested"
    evidence: str


@dataclass
class Analysis:
    headline: str
    figures: list[Path] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    claims: list[ClaimCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)


def pct(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:.{digits}f}%"


def frac(k: int, n: int) -> str:
    return f"{k}/{n}" if n else "—"


def save_figure(fig, stem: Path) -> Path:
    """Write a report's figure as ``stem.png`` (110 dpi) and ``stem.svg``, close it, and
    return the PNG's path (the one the reports embed)."""
    import matplotlib.pyplot as plt

    png = stem.with_suffix(".png")
    fig.savefig(png, dpi=110)
    fig.savefig(stem.with_suffix(".svg"))
    plt.close(fig)
    return png

