"""``freezegen report``'s page: one self-contained HTML file (no file, font or script fetched:
the figures are data: URIs, the style is inline), readable offline and attachable as is."""

from __future__ import annotations

import base64
from html import escape

from freezegen.report.run_figures import FIGURES, RunFigures
from freezegen.report.run_summary import memory_rows, summary_rows, thaw_rows
from freezegen.runlog import RunLog

__all__ = ["render_page"]

_MIME = {"svg": "image/svg+xml", "png": "image/png"}
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; text-align: left;
       border-bottom: 1px solid #ddd; vertical-align: top; }
img { max-width: 100%; } .missing { color: #666; font-style: italic; }
"""


def render_page(log: RunLog, figures: RunFigures, title: str) -> str:
    """The HTML page for ``log`` with its ``figures`` inlined; ``title`` names the run."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<h2>Summary</h2>",
        _table(summary_rows(log)),
    ]
    for name, heading in FIGURES.items():
        parts.append(f"<h2>{escape(heading)}</h2>")
        if name in figures.files:
            data = base64.b64encode(figures.files[name]).decode("ascii")
            parts.append(
                f'<img alt="{escape(heading)}" src="data:{_MIME[figures.format]};base64,{data}">'
            )
        else:
            parts.append(f'<p class="missing">{escape(figures.missing[name])}.</p>')
    parts.append("<h2>Thaw events</h2>")
    thaws = thaw_rows(log)
    if thaws:
        parts.append(_table(thaws, header=("step", "schedule entry", "tensors thawed")))
    else:
        parts.append('<p class="missing">No block was thawed.</p>')
    parts.append("<h2>Final memory</h2>")
    parts.append(_table(memory_rows(log)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"
