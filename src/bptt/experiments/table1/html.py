"""Table 1's report as the reproductions write theirs: ``report.md`` and a self-contained
``report.html`` (figures embedded, the sweeps' style from :mod:`bptt.experiments.report`),
made from the Markdown of ``table1.md``."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from bptt.experiments.report import _CSS, _md_inline

__all__ = ["markdown_html", "write_html_report"]

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def _row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_html(text: str, out_dir: Path, title: str) -> str:
    """The Markdown of a Table 1 report as one HTML page.

    Understands what :func:`bptt.experiments.table1.report.write_report` writes:
    ``#``/``##`` headings, pipe tables, ``*`` lists, images (embedded from ``out_dir`` as
    base64 PNG) and paragraphs.

    Args:
        text: the Markdown.
        out_dir: where the images named in ``text`` are.
        title: the page's title.

    Returns:
        The HTML document.
    """
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("## "):
            parts.append(f"<h2>{_md_inline(line[3:])}</h2>")
            i += 1
        elif line.startswith("# "):
            parts.append(f"<h1>{_md_inline(line[2:])}</h1>")
            i += 1
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            head, body = _row(block[0]), [_row(r) for r in block[2:]]
            parts.append("<table><tr>" + "".join(f"<th>{_md_inline(c)}</th>" for c in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{_md_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                         + "</table>")
        elif line.startswith("* "):
            items = []
            while i < len(lines) and lines[i].startswith("* "):
                items.append(lines[i][2:])
                i += 1
            parts.append("<ul class=\"meta\">" + "".join(f"<li>{_md_inline(t)}</li>" for t in items) + "</ul>")
        elif _IMAGE.fullmatch(line.strip()):
            alt, name = _IMAGE.fullmatch(line.strip()).groups()
            path = out_dir / name
            if path.exists():
                data = base64.b64encode(path.read_bytes()).decode()
                svg = Path(name).with_suffix(".svg").name
                parts.append(f"<figure><img alt=\"{html.escape(alt)}\" src=\"data:image/png;base64,{data}\">"
                             f"<figcaption class=\"note\">{html.escape(name)} (vector: <a href=\"{svg}\">{svg}</a>)"
                             f"</figcaption></figure>")
            i += 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "* ", "![")):
                para.append(lines[i])
                i += 1
            parts.append(f"<p>{_md_inline(' '.join(para))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(out_dir: Path) -> list[Path]:
    """Write ``report.md`` (the text of ``table1.md``) and ``report.html`` into ``out_dir``.

    Returns:
        The two paths.
    """
    out_dir = Path(out_dir)
    text = (out_dir / "table1.md").read_text()
    title = text.splitlines()[0].lstrip("# ").strip() if text else "Table 1"
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(text)
    page.write_text(markdown_html(text, out_dir, title))
    return [md, page]
