"""One self-contained HTML page: figures embedded as base64 PNG, tables, notes; no external files.

A `Page` is a list of sections, each a list of blocks (paragraph, note, table, figure, details);
`Page.render()` returns the whole document as a string.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.note{background:#fff6d6;border-left:4px solid #e0b400;padding:.4em .8em;margin:.5em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}img.grid{width:192px;image-rendering:pixelated;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
code{background:#f5f5f5;padding:0 3px}details{margin:.5em 0}
nav a{margin-right:1em}.scroll{overflow-x:auto;max-width:100%}
.media-grid{display:flex;flex-wrap:wrap;gap:1em}.media{margin:0}.media img{image-rendering:pixelated;max-width:560px}
"""


def esc(s) -> str:
    return html.escape(str(s))


def table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list = field(default_factory=list)

    def para(self, text: str):
        self.blocks.append(f"<p>{esc(text)}</p>")

    def raw(self, markup: str):
        self.blocks.append(markup)

    def note(self, text: str):
        self.blocks.append(f'<div class="note">{esc(text)}</div>')

    def table(self, df: pd.DataFrame, caption: str = ""):
        cap = f"<h3>{esc(caption)}</h3>" if caption else ""
        self.blocks.append(cap + table_html(df))

    def figure(self, png: bytes, caption: str, name: str):
        data = base64.b64encode(png).decode("ascii")
        self.blocks.append(f'<figure><img alt="{esc(caption)}" data-name="{esc(name)}" '
                           f'src="data:image/png;base64,{data}"><figcaption>{esc(caption)} '
                           f'(<code>figures/{esc(name)}.png</code>, <code>.svg</code>)</figcaption></figure>')

    def details(self, summary: str, inner: str):
        self.blocks.append(f"<details><summary>{esc(summary)}</summary>{inner}</details>")


@dataclass
class Page:
    title: str
    sections: list = field(default_factory=list)

    def section(self, title: str, anchor: str) -> Section:
        s = Section(title, anchor)
        self.sections.append(s)
        return s

    def render(self) -> str:
        nav = "".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in self.sections)
        body = "".join(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{"".join(s.blocks)}</section>'
                       for s in self.sections)
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<title>{esc(self.title)}</title><style>{CSS}</style></head>'
                f'<body><h1>{esc(self.title)}</h1><nav>{nav}</nav>{body}</body></html>\n')
