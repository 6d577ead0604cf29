"""Reports of reproduction sweeps: our numbers beside the paper's, in Markdown and HTML.

``write_report(store, sweep, out_dir)`` reads the sweep's runs from the results store,
lets its experiment build the tables, figures, comparisons and claim checks
(:class:`Analysis`), and writes into ``out_dir``:

* ``report.md`` and ``report.html`` (self-contained: figures embedded), with the budget
  and per-run caps, the runtime, the machine, the rate of training measured on it,
  the time the ``full`` budget would take here, and the exact commands to rerun;
* the figures (``*.png``, ``*.svg``), ``results.json`` (every number in the report)
  and ``summary.md`` (the figure, the main table and the runtime, to paste elsewhere).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bptt.experiments import paper
from bptt.experiments.analysis import Analysis, ClaimCheck, Comparison, Table, frac, pct
from bptt.experiments.manifest import machine, provenance, provenance_line, read_manifest
from bptt.experiments.protocol_table import markdown as protocol_markdown
from bptt.experiments.protocol_table import rows as protocol_rows
from bptt.experiments.registry import get
from bptt.experiments.sweep import steps_per_update, sweep_state
from bptt.store import Status, Store

__all__ = ["Analysis", "ClaimCheck", "Comparison", "Table", "budget_cost", "frac", "measured_rates", "pct",
           "records", "render_html", "render_markdown", "render_summary", "write_report"]


def records(store: Store, sweep: str) -> tuple[list[dict], dict]:
    """The settled run of each key of ``sweep`` (with labels), and counts of the others."""
    state = sweep_state(store, sweep)
    out, running, stopped = [], 0, 0
    for key, s in state.items():
        if s.outcome is not None:
            r = dict(s.outcome)
            r["labels"] = r["config"].get("labels", {})
            out.append(r)
        elif s.running is not None:
            running += 1
        else:
            stopped += 1
    out.sort(key=lambda r: r["id"])
    return out, {Status.RUNNING: running, Status.STOPPED: stopped}


def _fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


# -- cost accounting -------------------------------------------------------------------------------


def measured_rates(runs: list[dict]) -> dict:
    """Training and evaluation rates measured by the sweep's runs.

    ``train_rate``: member-steps (one update of one network on one time step of its
    minibatch) per second and worker, over every ensemble trained here; ``eval_rate``:
    sequence-steps per second and worker of the evaluations after training.
    """
    packs: dict[str, tuple[float, float, int]] = {}
    for r in runs:
        m = r["metrics"]
        if "pack" not in m:
            continue
        work, secs, size = packs.get(m["pack"], (0.0, float(m.get("pack_seconds", 0.0)), m.get("pack_size", 1)))
        packs[m["pack"]] = (work + float(m.get("work", 0.0)), secs, size)
    work = sum(p[0] for p in packs.values())
    secs = sum(p[1] for p in packs.values())
    ev_steps = ev_secs = 0.0
    for r in runs:
        e = r["metrics"].get("evaluation")
        if e:
            ev_steps += e["sequences"] * sum(e["lengths"])
            ev_secs += e.get("seconds", 0.0)
    sizes = sorted({p[2] for p in packs.values()})
    return {"train_rate": work / secs if secs > 0 else None, "train_seconds": secs, "train_work": work,
            "eval_rate": ev_steps / ev_secs if ev_secs > 0 else None, "eval_seconds": ev_secs,
            "ensemble_sizes": sizes, "packs": len(packs)}


def budget_cost(experiment, budget_name: str, rates: dict) -> dict:
    """Worst-case time of a budget on this machine: every run spends its whole update cap."""
    b = experiment.budget(budget_name)
    specs = experiment.specs(b)
    train_work = 0.0
    eval_work = 0.0
    for s in specs:
        cfg = s.train_config()
        train_work += cfg["max_updates"] * steps_per_update(cfg)
        ev = s.evaluation or {}
        eval_work += ev.get("sequences", 0) * sum(ev.get("lengths", []))
    tr, er = rates.get("train_rate"), rates.get("eval_rate")
    seconds = None
    if tr:
        seconds = train_work / tr + (eval_work / er if (er and eval_work) else 0.0)
    return {"budget": budget_name, "runs": len(specs), "train_work": train_work, "eval_work": eval_work,
            "worker_seconds": seconds}


# -- writing -----------------------------------------------------------------------------------------


def write_report(store: Store, sweep: str, out_dir: Path | str, *, echo: Callable[[str], None] = print) -> dict:
    """Write the report of ``sweep`` into ``out_dir``; return the paths written.

    Raises ``ValueError`` when the store holds no settled run of this sweep made by a
    known reproduction.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs, others = records(store, sweep)
    all_runs = store.list_runs(sweep=sweep)
    if not all_runs:
        known = sorted({r["sweep"] for r in store.list_runs() if r["sweep"]})
        raise ValueError(f"no runs of sweep {sweep!r} in {store.path or ':memory:'}"
                         + (f"; sweeps there: {', '.join(known)}" if known else ""))
    labels = all_runs[0]["config"].get("labels", {})
    if "experiment" not in labels:
        raise ValueError(f"sweep {sweep!r} was not made by `bptt reproduce`; it has no experiment label")
    exp = get(labels["experiment"])
    budget = exp.budget(labels["budget"])
    planned = len(exp.plan(budget, runs if exp.staged else None))
    analysis: Analysis = exp.analyze(runs, budget, out, **exp.context(store, runs, budget))

    manifest = read_manifest(out)
    invocations = manifest.get("invocations", [])
    wall = sum(i.get("seconds", 0.0) for i in invocations) or None
    rates = measured_rates(all_runs)
    here = machine()
    workers = max([i.get("workers") or 1 for i in invocations] or [1])
    cores = here.get("cores") or 1
    full = budget_cost(exp, "full", rates)
    this = budget_cost(exp, budget.name, rates)
    store_path = str(store.path) if store.path is not None else ":memory:"
    commands = [manifest.get("command") or
                f"bptt reproduce {exp.name} --budget {budget.name} --store {store_path} --out {out}",
                f"bptt report {sweep} --store {store_path} --out {out}"]
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    meta = {
        "sweep": sweep, "experiment": exp.name, "title": exp.title, "paper_ref": exp.paper_ref,
        "budget": asdict(budget), "planned_runs": planned, "settled_runs": len(runs),
        "statuses": statuses, "running": others[Status.RUNNING], "stopped_unsettled": others[Status.STOPPED],
        "wall_seconds": wall, "invocations": invocations, "rates": rates, "machine": here,
        "cores": cores, "workers": workers, "cost_this_budget": this, "cost_full": full,
        "commands": commands, "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "store": store_path,
        "protocol": protocol_rows(exp.name, budget), "provenance": provenance(),
        "run_provenance": invocations[-1].get("provenance") if invocations else None,
        "settings": invocations[-1].get("settings") if invocations else None,
        "comparable": budget.name != "smoke",
    }
    if not meta["comparable"]:
        analysis = _not_comparable(analysis)
    paths = {"md": out / "report.md", "html": out / "report.html", "json": out / "results.json",
             "summary": out / "summary.md"}
    paths["md"].write_text(render_markdown(analysis, meta))
    paths["html"].write_text(render_html(analysis, meta, out))
    paths["json"].write_text(json.dumps({"meta": meta, "analysis": _jsonable(analysis)}, indent=2, default=str))
    paths["summary"].write_text(render_summary(analysis, meta))
    for f in analysis.figures:
        paths[f.stem] = f
    echo("wrote " + ", ".join(str(p) for p in paths.values()))
    return paths


SMOKE_BANNER = ("**Smoke budget: a test of the pipeline, not a result.** Every run stops after a handful of "
                "updates; nothing here is comparable with the paper at this budget.")


def _not_comparable(a: Analysis) -> Analysis:
    """At the smoke budget every verdict reads "not comparable at this budget"."""
    from dataclasses import replace

    return replace(a, comparisons=[replace(c, verdict="not comparable at this budget") for c in a.comparisons],
                   claims=[replace(c, verdict="not comparable at this budget") for c in a.claims])


def _provenance_lines(meta: dict) -> list[str]:
    lines = []
    if meta.get("run_provenance"):
        lines.append("Training: " + provenance_line(meta["run_provenance"]))
    lines.append("This report: " + provenance_line(meta["provenance"]))
    return lines


def _jsonable(a: Analysis) -> dict:
    d = asdict(a)
    d["figures"] = [str(f) for f in a.figures]
    return d


def _cost_lines(meta: dict) -> list[str]:
    r = meta["rates"]
    lines = []
    if r["train_rate"]:
        sizes = ", ".join(map(str, r["ensemble_sizes"]))
        lines.append(f"Measured training rate: {r['train_rate']:,.0f} member-steps per second per worker "
                     f"(one member-step = one network, one update, one time step of its 20 sequences; "
                     f"ensembles of {sizes}), over {_fmt_duration(r['train_seconds'])} of training.")
    if r["eval_rate"]:
        lines.append(f"Measured evaluation rate: {r['eval_rate'] / 1e6:,.2f} M sequence-steps per second per worker.")
    full = meta["cost_full"]
    if full["worker_seconds"]:
        cores = meta["cores"]
        lines.append(
            f"The `full` budget ({full['runs']} runs) would take at most "
            f"{_fmt_duration(full['worker_seconds'] / cores)} on this machine with {cores} worker processes "
            f"(`--executor processes --workers {cores}`), {_fmt_duration(full['worker_seconds'])} of one worker: "
            f"{full['train_work']:.3g} member-steps of training if every run spent its whole update cap, "
            f"at the rate measured here. Runs that succeed stop early, and the larger ensembles of `full` "
            f"train faster per member, so this is an upper bound.")
    return lines


def _budget_lines(meta: dict) -> list[str]:
    b = meta["budget"]
    lines = [f"Budget **{b['name']}**: {b['seeds']} seed(s) per configuration, at most {b['max_updates']:,} "
             f"updates per run, a cheap check on {b['check_sequences']:,} sequences every {b['eval_every']:,} "
             f"updates, success confirmed on {b['eval_sequences']:,} fresh sequences"
             + (f", {b['test_sequences']:,} test sequences per length after training" if b.get("test_sequences") else "")
             + "."]
    if b.get("note"):
        lines.append(b["note"])
    return lines


def _runtime_lines(meta: dict) -> list[str]:
    inv = meta["invocations"]
    lines = []
    if inv:
        last = inv[-1]
        lines.append(f"Runtime: {_fmt_duration(meta['wall_seconds'])} of wall-clock time over {len(inv)} "
                     f"invocation(s) (last: {last.get('executor')} executor, {last.get('workers')} worker(s), "
                     f"{last.get('threads')} thread(s) each, finished {last.get('finished')}).")
    else:
        lines.append("Runtime: no record of the invocations (the report was written without `sweep.json`).")
    lines.append(f"Compute: {_fmt_duration(meta['rates']['train_seconds'])} training and "
                 f"{_fmt_duration(meta['rates']['eval_seconds'])} evaluating, summed over workers.")
    return lines


def _machine_line(meta: dict) -> str:
    m = meta["machine"]
    return (f"Machine: {m.get('host')}, {m.get('cpu') or 'unknown CPU'}, {m.get('cores')} cores; "
            f"{m.get('platform')}; Python {m.get('python')}, torch {m.get('torch')}, bptt {m.get('bptt')}.")


def _status_line(meta: dict) -> str:
    st = ", ".join(f"{v} {k}" for k, v in sorted(meta["statuses"].items()))
    line = f"Runs: {meta['settled_runs']} of {meta['planned_runs']} settled ({st or 'none'})"
    if meta["running"]:
        line += f", {meta['running']} running"
    if meta["planned_runs"] > meta["settled_runs"]:
        line += ". The sweep is incomplete: rerun the command below to finish it"
    return line + "."


def _md_table(t: Table) -> str:
    lines = [f"**{t.title}**", "", "| " + " | ".join(t.columns) + " |", "|" + " --- |" * len(t.columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in t.rows]
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines)


def render_markdown(a: Analysis, meta: dict) -> str:
    out = [f"# {meta['title']}", ""]
    if not meta.get("comparable", True):
        out += [f"> {SMOKE_BANNER}", ""]
    out += [f"Reproduction of {meta['paper_ref']} of {paper.CITATION}. Sweep `{meta['sweep']}`.", "",
            a.headline, ""]
    for f in a.figures:
        out += [f"![{f.stem}]({f.name})", ""]
    out += ["## Our numbers beside the paper's", ""]
    if a.comparisons:
        out += ["| quantity | ours | paper | |", "| --- | --- | --- | --- |"]
        out += [f"| {c.quantity} | {c.ours} | {c.paper} | {c.verdict} |" for c in a.comparisons]
        out.append("")
    if a.claims:
        out += ["## The paper's claims", ""]
        out += ["| claim | source | verdict | evidence |", "| --- | --- | --- | --- |"]
        out += [f"| {c.claim.text} | {c.claim.source} | **{c.verdict}** | {c.evidence} |" for c in a.claims]
        out.append("")
    out += ["## Results", ""]
    for t in a.tables:
        out += [_md_table(t), ""]
    if a.notes:
        out += ["## Notes", ""] + [f"* {n}" for n in a.notes] + [""]
    out += ["## Protocol", "", "Every setting of this run, its value and its source (generated from the code "
            "that ran).", "", protocol_markdown(meta["protocol"]), ""]
    out += ["## Budget, runtime and machine", "", *[f"* {line}" for line in
            [*_budget_lines(meta), _status_line(meta), *_runtime_lines(meta), _machine_line(meta),
             *_cost_lines(meta), *_provenance_lines(meta)]], ""]
    out += ["## Rerun", "", "```bash", *meta["commands"], "```", "",
            f"Results store: `{meta['store']}`. Written {meta['written']}.", ""]
    return "\n".join(out)


def render_summary(a: Analysis, meta: dict) -> str:
    out = [f"**{meta['title']}** (budget `{meta['budget']['name']}`): {a.headline}", ""]
    if not meta.get("comparable", True):
        out = [f"> {SMOKE_BANNER}", "", *out]
    for f in a.figures[:1]:
        out += [f"![{f.stem}]({f.name})", ""]
    if a.tables:
        out += [_md_table(a.tables[0]), ""]
    out += [_runtime_lines(meta)[0], "", *_cost_lines(meta)[-1:], ""]
    return "\n".join(out)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1.5em; color: #1b1f24; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.sub { color: #57606a; margin-top: 0; }
.headline { font-size: 1.05em; background: #f6f8fa; border-left: 4px solid #0969da; padding: .6em 1em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .3em .65em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
.v-holds, .v-matches { color: #1a7f37; font-weight: 600; }
.v-does-not-hold, .v-differs { color: #cf222e; font-weight: 600; }
.v-not-tested, .v-not-comparable, .v-pending, .v-not-comparable-at-this-budget { color: #9a6700; font-weight: 600; }
.banner { background: #fff8c5; border: 1px solid #d4a72c; padding: .6em 1em; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; }
ul.meta li { margin: .25em 0; } .note { color: #57606a; font-size: .9em; }
"""


def _verdict_class(v: str) -> str:
    return "v-" + v.replace(" ", "-")


def _md_inline(text: str) -> str:
    """Escape text for HTML, turning `code` and **bold** into tags."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)

    def cell(v: str) -> str:
        s = str(v)
        num = bool(re.fullmatch(r"[\d\s.,%/()+\-−—≤]+", s))
        return f"<td class=\"num\">{html.escape(s)}</td>" if num else f"<td>{_md_inline(s)}</td>"

    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in t.rows)
    note = f"<p class=\"note\">{_md_inline(t.note)}</p>" if t.note else ""
    return f"<table><caption>{html.escape(t.title)}</caption><tr>{head}</tr>{body}</table>{note}"


def render_html(a: Analysis, meta: dict, out: Path) -> str:
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(meta['title'])}"
             f" — {html.escape(meta['sweep'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(meta['title'])}</h1>",
             *([f"<p class=\"banner\">{_md_inline(SMOKE_BANNER)}</p>"] if not meta.get("comparable", True) else []),
             f"<p class=\"sub\">Reproduction of {html.escape(meta['paper_ref'])} of {html.escape(paper.CITATION)}. "
             f"Sweep <code>{html.escape(meta['sweep'])}</code>, budget <code>{html.escape(meta['budget']['name'])}"
             f"</code>.</p>",
             f"<p class=\"headline\">{_md_inline(a.headline)}</p>"]
    for f in a.figures:
        data = base64.b64encode((out / f.name).read_bytes()).decode()
        svg = f.with_suffix(".svg").name
        parts.append(f"<figure><img alt=\"{html.escape(f.stem)}\" src=\"data:image/png;base64,{data}\">"
                     f"<figcaption class=\"note\">{html.escape(f.name)} (vector: <a href=\"{svg}\">{svg}</a>)"
                     f"</figcaption></figure>")
    parts.append("<h2>Our numbers beside the paper's</h2>")
    if a.comparisons:
        rows = "".join(f"<tr><td>{_md_inline(c.quantity)}</td><td class=\"num\">{html.escape(c.ours)}</td>"
                       f"<td class=\"num\">{html.escape(c.paper)}</td>"
                       f"<td class=\"{_verdict_class(c.verdict)}\">{html.escape(c.verdict)}</td></tr>"
                       for c in a.comparisons)
        parts.append(f"<table><tr><th>quantity</th><th>ours</th><th>paper</th><th></th></tr>{rows}</table>")
    if a.claims:
        parts.append("<h2>The paper's claims</h2>")
        rows = "".join(f"<tr><td>{_md_inline(c.claim.text)}</td><td>{html.escape(c.claim.source)}</td>"
                       f"<td class=\"{_verdict_class(c.verdict)}\">{html.escape(c.verdict)}</td>"
                       f"<td>{_md_inline(c.evidence)}</td></tr>" for c in a.claims)
        parts.append(f"<table><tr><th>claim</th><th>source</th><th>verdict</th><th>evidence</th></tr>{rows}</table>")
    parts.append("<h2>Results</h2>")
    parts += [_html_table(t) for t in a.tables]
    if a.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_md_inline(n)}</li>" for n in a.notes) + "</ul>")
    parts.append("<h2>Protocol</h2>")
    parts.append(_html_table(Table("Protocol: every setting, its value and its source", ["setting", "value", "source"],
                                   [list(r) for r in meta["protocol"]])))
    items = [*_budget_lines(meta), _status_line(meta), *_runtime_lines(meta), _machine_line(meta),
             *_cost_lines(meta), *_provenance_lines(meta)]
    parts.append("<h2>Budget, runtime and machine</h2><ul class=\"meta\">"
                 + "".join(f"<li>{_md_inline(i)}</li>" for i in items) + "</ul>")
    parts.append("<h2>Rerun</h2><pre>" + html.escape("\n".join(meta["commands"])) + "</pre>"
                 f"<p class=\"note\">Results store: <code>{html.escape(meta['store'])}</code>. "
                 f"Written {html.escape(meta['written'])}.</p></body></html>")
    return "\n".join(parts)
