"""HTML building blocks of the report: escaped tables, sections, inlined images, the page's CSS.

The page must open anywhere, from a mail attachment, without a network: everything is in the one
file. Images are ``data:`` URIs (PNG or SVG bytes, base64), the style is one inline ``<style>``
block with system fonts, and there is no script, no web font and no external reference of any
kind. Every text that comes from a file (metric names, file names, parameters) is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

from nucvn.core.errors import NucvnError

__all__ = ["CSS", "esc", "table", "details", "section", "image_uri", "figure", "file_figure", "page"]

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1250px; padding: 0 1.2em 3em; color: #1d1d1d; line-height: 1.4; font-size: 15px; }
h1 { font-size: 1.6em; margin: 0.8em 0 0.2em; } h2 { border-bottom: 2px solid #c8d3df; padding-bottom: 0.15em;
margin-top: 1.8em; } h3 { margin: 1.3em 0 0.4em; } h4 { margin: 1em 0 0.3em; font-size: 1em; color: #34495e; }
p.lead { color: #444; margin-top: 0; } p.note { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 0.9em; }
th, td { border: 1px solid #d5dbe1; padding: 0.18em 0.55em; text-align: left; vertical-align: top; }
th { background: #eef2f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flag td { background: #fff3d6; } code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace;
font-size: 0.88em; } .small { font-size: 0.8em; color: #555; }
nav ul { columns: 3; list-style: none; padding-left: 0; } nav li { margin: 0.1em 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
figure { margin: 0; border: 1px solid #e1e6eb; padding: 0.3em; background: #fff; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figure.half img { width: 590px; } figcaption { font-size: 0.8em; color: #444; margin-top: 0.2em; }
details { margin: 0.4em 0; } summary { cursor: pointer; color: #234d77; }
"""


def esc(text: object) -> str:
    """``text`` as HTML text (``<``, ``&`` and quotes escaped)."""
    return html.escape(str(text), quote=True)


def _is_number(text: str) -> bool:
    head = text.lstrip("+-−")[:1]
    return head.isdigit() or head in (".", "—")


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *, flags: Sequence[bool] | None = None,
          caption: str = "") -> str:
    """An HTML table of escaped cells; cells that read as numbers are right-aligned. ``flags`` marks
    rows to highlight (e.g. a change outside its statistical error)."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption class='small'>{esc(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = " class='flag'" if flags is not None and flags[i] else ""
        cells = "".join(f"<td class='num'>{esc(c)}</td>" if _is_number(str(c)) else f"<td>{esc(c)}</td>" for c in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def details(summary: str, body: str) -> str:
    """A collapsed block (``<details>``) with a one-line summary; ``body`` is HTML."""
    return f"<details><summary>{esc(summary)}</summary>\n{body}\n</details>"


def section(anchor: str, title: str, body: str, *, level: int = 2) -> str:
    """A heading with an id (for the table of contents) followed by ``body`` (HTML)."""
    return f"<section id='{esc(anchor)}'>\n<h{level}>{esc(title)}</h{level}>\n{body}\n</section>"


_PNG = b"\x89PNG\r\n\x1a\n"


def image_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` of ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure(data: bytes, mime: str, caption: str, *, alt: str = "", half: bool = True) -> str:
    """An inlined image with its caption."""
    cls = " class='half'" if half else ""
    return (f"<figure{cls}><img src='{image_uri(data, mime)}' alt='{esc(alt or caption)}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def file_figure(path: Path, caption: str, *, half: bool = True) -> str:
    """The PNG or SVG file ``path`` inlined as a figure; anything else is refused naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise NucvnError(f"{path}: cannot read this figure ({exc.strerror}); rerun the stage that writes it") from exc
    if data.startswith(_PNG):
        mime = "image/png"
    elif path.suffix.lower() == ".svg" and b"<svg" in data[:2048]:
        mime = "image/svg+xml"
    else:
        raise NucvnError(f"{path}: not a PNG or SVG image; rerun the stage that writes it (dvc repro -f <stage>)")
    return figure(data, mime, caption, alt=path.name, half=half)


def page(title: str, body: str) -> str:
    """The whole self-contained document."""
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
