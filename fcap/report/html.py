"""report.html: report.md as one self-contained page (images inlined), for a browser.

A lab looking at a run on a cluster copies one file and opens it locally: the
page is rendered from report.md itself, so both always say the same thing, and
every image it references is embedded as a ``data:`` URI. Only the Markdown that
reports contain is understood: ``#`` headings, pipe tables, ``- `` lists,
paragraphs, images, links, ``**bold**`` and ``code`` spans; anything else
shows as text.
"""
from __future__ import annotations

import base64
import mimetypes
import re
from html import escape
from pathlib import Path

from fcap.io import write_text_atomic

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; }
code { background: #f4f4f4; padding: 0 0.2em; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_SEPARATOR = re.compile(r"^:?-+:?$")


def write_html(markdown_path: Path) -> Path:
    """Write ``report.html`` beside ``markdown_path``; images resolve against its folder."""
    markdown_path = Path(markdown_path)
    text = markdown_path.read_text()
    title = next((line[1:].strip() for line in text.splitlines() if line.startswith("# ")),
                 markdown_path.stem)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{render(text, base_dir=markdown_path.parent)}\n</body>\n</html>\n")
    return write_text_atomic(markdown_path.with_suffix(".html"), page)


def render(markdown: str, *, base_dir: Path) -> str:
    """The HTML body of ``markdown``, block by block."""
    lines, out, i = markdown.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip(), base_dir)}</h{level}>")
            i += 1
        elif line.startswith("|"):
            j = _run_of(lines, i, lambda s: s.startswith("|"))
            out.append(_table(lines[i:j], base_dir))
            i = j
        elif line.startswith("- "):
            j = _run_of(lines, i, lambda s: s.startswith("- "))
            items = "".join(f"<li>{_inline(s[2:], base_dir)}</li>" for s in lines[i:j])
            out.append(f"<ul>{items}</ul>")
            i = j
        else:
            j = _run_of(lines, i, lambda s: bool(s.strip()) and not s.startswith(("#", "|", "- ")))
            out.append(f"<p>{_inline(' '.join(s.strip() for s in lines[i:j]), base_dir)}</p>")
            i = j
    return "\n".join(out)


def _run_of(lines: list[str], start: int, keep) -> int:
    end = start + 1
    while end < len(lines) and keep(lines[end]):
        end += 1
    return end


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str], base_dir: Path) -> str:
    rows = [_cells(line) for line in lines]
    head = []
    if len(rows) > 1 and all(_SEPARATOR.match(c) for c in rows[1]):
        head, rows = rows[0], rows[2:]
    html = ["<table>"]
    if head:
        html.append("<thead><tr>" + "".join(f"<th>{_inline(c, base_dir)}</th>" for c in head)
                    + "</tr></thead>")
    html.append("<tbody>" + "".join(
        "<tr>" + "".join(f"<td>{_inline(c, base_dir)}</td>" for c in row) + "</tr>" for row in rows)
        + "</tbody></table>")
    return "".join(html)


def _inline(text: str, base_dir: Path) -> str:
    """Escape ``text`` and render its code spans, images, links and bold parts."""
    parts = text.split("`")
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 1 and k < len(parts) - 1:  # inside a closed `code span`
            out.append(f"<code>{escape(part)}</code>")
            continue
        part = "`" + part if k % 2 == 1 else part  # an unclosed backtick is text
        pieces, last = [], 0
        for m in _IMAGE.finditer(part):
            pieces += [_links(escape(part[last:m.start()])), _image(m[1], m[2], base_dir)]
            last = m.end()
        out.append("".join(pieces) + _links(escape(part[last:])))
    return "".join(out)


def _links(escaped: str) -> str:
    escaped = _LINK.sub(lambda m: f'<a href="{m[2]}">{m[1]}</a>', escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def _image(alt: str, src: str, base_dir: Path) -> str:
    """An ``<img>`` with the file inlined; a missing file says so instead."""
    path = base_dir / src
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return f"<em>(image not found: {escape(src)})</em>"
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f'<img alt="{escape(alt)}" src="data:{mime};base64,{data}">'
