"""Report sections -> terminal text, Markdown, and self-contained HTML.

In: a :class:`tools.report.metrics.Report` (and, for HTML/Markdown, the PNG
plots).  Out: strings.  The three formats render the one list of sections
that tools.report.sections builds, so they always say the same thing; the
JSON (every number) is tools.report.json_report.
"""

from __future__ import annotations

import base64
import html

from tools.report.metrics import Report
from tools.report.sections import Table, sections

PLOT_TITLES = {"scores": "Genuine and impostor best_score", "roc": "ROC", "det": "DET"}


# --------------------------------------------------------------------------- text


def _text_table(t: Table) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in t.rows)) if t.rows else len(h)
        for i, h in enumerate(t.headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [
        "  " + fmt.format(*t.headers).rstrip(),
        "  " + "  ".join("-" * w for w in widths),
        *("  " + fmt.format(*r).rstrip() for r in t.rows),
    ]


def to_text(report: Report, max_examples: int = 5) -> str:
    """The terminal summary: the same sections, fewer examples (HTML/Markdown list up to 20)."""
    out: list[str] = ["facegate decision report", "=" * 24]
    for s in sections(report, max_examples):
        out += ["", s.title, "-" * len(s.title), *s.lines]
        for t in s.tables:
            out += _text_table(t)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, plot_files: dict[str, str] | None = None) -> str:
    """Markdown; ``plot_files`` maps plot keys to image paths relative to the .md file."""
    out = ["# facegate decision report"]
    for s in sections(report):
        out += ["", f"## {s.title}", ""]
        out += [
            f"- {_md_cell(line)}" if not line.startswith("  ") else f"  - `{line.strip()}`"
            for line in s.lines
        ]
        for t in s.tables:
            out += [
                "",
                "| " + " | ".join(map(_md_cell, t.headers)) + " |",
                "|" + "|".join("---" for _ in t.headers) + "|",
                *("| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows),
            ]
        for key in s.plots:
            if plot_files and key in plot_files:
                out += ["", f"![{PLOT_TITLES[key]}]({plot_files[key]})"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} h2{border-bottom:1px solid #ddd;margin-top:1.6em}
img{max-width:100%;margin:.5em 1em .5em 0;border:1px solid #eee}
.warn{color:#a00;font-weight:bold}
"""


def _is_warning(line: str) -> bool:
    """A line HTML shows in red: a target not met, or any false accept at all."""
    return "NOT MEETING" in line or (
        line.startswith("false accepts: ") and not line.startswith("false accepts: 0 ")
    )


def to_html(report: Report, plots: dict[str, bytes]) -> str:
    """One self-contained page: the plots are embedded as base64 PNG data URIs."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>facegate decision report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>facegate decision report</h1>",
    ]
    for s in sections(report):
        out.append(f"<h2>{e(s.title)}</h2>")
        for line in s.lines:
            cls = ' class="warn"' if _is_warning(line) else ""
            out.append(f"<p{cls}>{e(line)}</p>")
        for t in s.tables:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in t.rows]
            out.append("</table>")
        for key in s.plots:
            if key in plots:
                data = base64.b64encode(plots[key]).decode("ascii")
                out.append(f'<img alt="{e(PLOT_TITLES[key])}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
