"""Markdown → a self-contained HTML page, with Python-Markdown (a maintained renderer).

Extensions: ``tables``, ``footnotes`` (``[^n]`` references and their list), ``md_in_html``
(``<details markdown="1">`` collapsible appendices), ``attr_list``, ``sane_lists``. A tree processor
wraps every table in ``<div class="table-scroll">``, a box that scrolls sideways, so a wide table never
pushes the page past its 960 px column. Raises nothing of its own.
"""
from __future__ import annotations

import html
import xml.etree.ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

COLUMN_PX = 960
CSS = f"""
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:{COLUMN_PX}px;margin:2em auto;
padding:0 12px;box-sizing:border-box;line-height:1.45;color:#222}}
h1{{font-size:1.6em}} h2{{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}}
.table-scroll{{max-width:100%;overflow-x:auto;margin:1em 0}}
table{{border-collapse:collapse;font-size:.92em}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}} th{{background:#f3f3f3;text-align:left}}
img{{max-width:100%;height:auto}}
code{{background:#f4f4f4;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}}
pre{{background:#f4f4f4;padding:8px;overflow-x:auto}}
details{{margin:1em 0;border:1px solid #ddd;border-radius:4px;padding:.3em .8em}}
summary{{cursor:pointer;font-weight:600}}
.footnote{{font-size:.88em;color:#444}}
"""


class _WrapTables(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for i, child in enumerate(list(parent)):
                if child.tag == "table":
                    box = etree.Element("div", {"class": "table-scroll"})
                    parent.remove(child)
                    box.append(child)
                    parent.insert(i, box)


class ScrollingTables(Extension):
    """Wrap each ``<table>`` in a sideways-scrolling ``<div class="table-scroll">``."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Python-Markdown's API name)
        md.treeprocessors.register(_WrapTables(md), "scrolling_tables", 0)


def to_html(markdown_text: str, title: str) -> str:
    """The whole page: ``<!doctype html>`` … with the report's CSS and ``markdown_text`` rendered."""
    body = markdown.markdown(markdown_text, extensions=["tables", "footnotes", "md_in_html", "attr_list",
                                                         "sane_lists", ScrollingTables()],
                             output_format="html")
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
