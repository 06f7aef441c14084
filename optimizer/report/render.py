"""report.md and report.html of a comparison, from the results document alone.

``qfreight report RUN_DIR`` rebuilds them identically. Every name that comes from an input file
is escaped: HTML-escaped in report.html (which also forbids scripts by its
Content-Security-Policy), Markdown- and HTML-escaped in report.md.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.report.plots import Figure, comparison_figures
from optimizer.report.results import (
    csv_text,
    to_jsonable,
    write_atomic,
    write_bytes_atomic,
)
from optimizer.report.stats import annotate, backend_stats
from optimizer.report.tables import Table, comparison_tables, summary_lines

__all__ = ["render_markdown", "render_html", "write_comparison_reports"]


# ----------------------------------------------------------------------------------- rendering
def _md(text: str) -> str:
    """Markdown cell text: HTML-escaped (Markdown renders raw HTML) and Markdown specials escaped."""
    import html

    text = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _header_facts(doc: dict) -> list[tuple[str, str]]:
    rows = doc["rows"]
    versions: dict[str, str] = {}
    for r in rows:
        for k, v in (r.get("versions") or {}).items():
            if v is not None:
                versions.setdefault(k, v)
    return [
        ("run", doc.get("run_id", "")),
        ("created", doc.get("created", "")),
        ("status", f"{doc.get('status')} ({len(rows)} of {doc.get('planned_runs', len(rows))} runs finished)"),
        ("command", " ".join(doc.get("command") or [])),
        ("config", doc.get("config") or "(defaults)"),
        ("instances", ", ".join(doc["instances"])),
        ("backends", ", ".join(doc.get("backends", []))),
        ("seeds", ", ".join(str(s) for s in doc.get("seeds", []))),
        ("time limit per run", f"{doc.get('time_limit_s')} s"),
        ("executor", f"{(doc.get('executor') or {}).get('kind')} ({(doc.get('executor') or {}).get('workers')} "
                     f"workers)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]


_SECTION_FIGURES = {  # which figures follow which table
    "instances": ("objective-time",),
    "profile": ("profile",),
    "kpis": ("kpis", "gantt"),
    "network": ("map",),
}


def _figures_for(section: str, figures: list[Figure]) -> list[Figure]:
    kinds = _SECTION_FIGURES.get(section, ())
    return [f for f in figures if any(f.key.endswith("-" + kind) or f.key == f"fig-{kind}" for kind in kinds)]


def render_markdown(doc: dict, tables: list[Table], summary: list[str], figures: list[Figure]) -> str:
    out = ["# qfreight solver comparison", ""]
    out += [f"- **{_md(k)}**: {_md(v)}" for k, v in _header_facts(doc)]
    out += ["", "## Summary", ""] + [f"- {_md(line)}" for line in summary] + [""]
    placed: set[str] = set()
    for t in tables:
        out += [f"## {_md(t.title)}", ""]
        out.append("| " + " | ".join(_md(c) for c in t.columns) + " |")
        out.append("|" + "|".join("---" for _ in t.columns) + "|")
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in t.rows]
        if t.note:
            out += ["", _md(t.note)]
        out.append("")
        for f in _figures_for(t.key, figures):
            out += [f"![{_md(f.title)}]({f.key}.png)", ""]
            placed.add(f.key)
    rest = [f for f in figures if f.key not in placed]
    if rest:
        out += ["## Plots", ""] + [f"![{_md(f.title)}]({f.key}.png)\n" for f in rest]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111;background:#fff;max-width:1150px}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eee}td{font-variant-numeric:tabular-nums}
.note{color:#444;font-size:13px;max-width:1000px}
figure{margin:12px 0}figcaption{font-size:13px;color:#444}
img{max-width:100%;height:auto;border:1px solid #ddd}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}dt{font-weight:600}dd{margin:0}
""".strip()


def render_html(doc: dict, tables: list[Table], summary: list[str], figures: list[Figure]) -> str:
    """A self-contained page: plots embedded as base64 PNG, no script, no network."""
    import base64
    import html

    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>qfreight solver comparison {e(doc.get('run_id', ''))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>qfreight solver comparison</h1>",
        '<section id="run"><dl>',
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _header_facts(doc)),
        "</dl></section>",
        '<section id="summary"><h2>Summary</h2><ul>',
        *(f"<li>{e(line)}</li>" for line in summary),
        "</ul></section>",
    ]

    def figure(f: Figure) -> str:
        data = base64.b64encode(f.png).decode("ascii")
        return (f'<figure id="{e(f.key)}"><img src="data:image/png;base64,{data}" width="{f.width}" '
                f'height="{f.height}" alt="{e(f.title)}"><figcaption>{e(f.title)}</figcaption></figure>')

    placed: set[str] = set()
    for t in tables:
        parts.append(f'<section id="{e(t.key)}"><h2>{e(t.title)}</h2>')
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in t.columns) + "</tr></thead>")
        parts.append("<tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows]
        parts.append("</tbody></table>")
        if t.note:
            parts.append(f'<p class="note">{e(t.note)}</p>')
        for f in _figures_for(t.key, figures):
            parts.append(figure(f))
            placed.add(f.key)
        parts.append("</section>")
    rest = [f for f in figures if f.key not in placed]
    if rest:
        parts += ['<section id="plots"><h2>Plots</h2>', *(figure(f) for f in rest), "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_comparison_reports(doc: dict, out_dir: str | Path) -> list[Path]:
    """report.md (with the PNGs beside it), report.html (PNGs embedded) and results.csv.

    Built from the JSON form of ``doc`` so that a rebuild from results.json gives the same tables.
    """
    import json

    out_dir = Path(out_dir)
    doc = annotate(json.loads(json.dumps(to_jsonable(doc), allow_nan=False)))
    tables = comparison_tables(doc)
    summary = summary_lines(doc, backend_stats(doc))
    figures = comparison_figures(doc)
    written = [write_atomic(out_dir / "results.csv", csv_text(doc))]
    for f in figures:
        written.append(write_bytes_atomic(out_dir / f"{f.key}.png", f.png))
    written.append(write_atomic(out_dir / "report.md", render_markdown(doc, tables, summary, figures)))
    written.append(write_atomic(out_dir / "report.html", render_html(doc, tables, summary, figures)))
    return written
