"""The report as one self-contained HTML page: figures embedded as base64 data URIs, inline CSS.

No script, no font, no link out of the page: it opens from a file, with no server and no network.
Every text that comes from data is escaped here.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1200px; padding: 0 24px 48px; line-height: 1.45; }
h1 { margin: 24px 0 4px; font-size: 1.7em; }
h2 { margin-top: 40px; padding-top: 8px; border-top: 2px solid #ddd; }
.subtitle { color: #555; margin: 0 0 16px; }
.banner { padding: 10px 14px; border-radius: 4px; font-weight: bold; margin: 12px 0; }
.demo { background: #fff3cd; border: 2px solid #e0a800; }
.competition { background: #e7f3ea; border: 2px solid #4a9a5c; }
.header { display: flex; flex-wrap: wrap; gap: 24px; }
.header > div { flex: 1 1 320px; }
.header h3 { margin: 8px 0 4px; }
table { border-collapse: collapse; font-size: 0.92em; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
nav ol { columns: 2; margin: 8px 0; }
.note { color: #7a4b00; }
"""


@dataclasses.dataclass
class Section:
    anchor: str  # the id linked from the contents
    title: str
    text: str = ""  # one paragraph of plain text
    figures: list[tuple[Path, str]] = dataclasses.field(default_factory=list)  # (PNG, caption)
    html: str = ""  # extra markup, built with table() or key_values()


def fmt(value) -> str:
    """A cell's text: thousands separators, 4 decimals, nested dicts inline."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN: a trial without a result
            return ""
        if value and abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {fmt(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(item) for item in value)
    return str(value)


def _cell(value, align: bool = True) -> str:
    numeric = align and isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td{" class=num" if numeric else ""}>{html.escape(fmt(value))}</td>'


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(column)) for column in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def key_values(items: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th>{_cell(value, align=False)}</tr>"
                   for key, value in items.items())
    return f"<table>{rows}</table>"


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _section(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.anchor)}"><h2>{html.escape(section.title)}</h2>']
    if section.text:
        parts.append(f"<p>{html.escape(section.text)}</p>")
    for png, caption in section.figures:
        parts.append(f'<figure><img src="{data_uri(png)}" alt="{html.escape(png.stem)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append(section.html)
    parts.append("</section>")
    return "\n".join(parts)


def render(title: str, subtitle: str, banner: tuple[str, str], header: dict[str, dict],
           sections: list[Section]) -> str:
    """The whole page. banner: (css class, text); header: {heading: {key: value}}, shown side by side."""
    boxes = "".join(f"<div><h3>{html.escape(name)}</h3>{key_values(items)}</div>" for name, items in header.items())
    contents = "".join(f'<li><a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "\n".join(_section(section) for section in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>{CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="subtitle">{html.escape(subtitle)}</p>
<div class="banner {html.escape(banner[0])}">{html.escape(banner[1])}</div>
<div class="header">{boxes}</div>
<nav><ol>{contents}</ol></nav>
{body}
</body>
</html>
"""
