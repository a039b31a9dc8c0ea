"""One report document as Markdown (the PR comment) and as a self-contained HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from soilci.report.blocks import Block, Code, Document, Image, Mark, Paragraph, Section, Strong, Table, Text

ASSETS_DIR = "report"  # images beside report.md, referenced relatively (CML uploads them)
TEMPLATE = Path(__file__).parent / "templates" / "report.html"

MARKS = {"better": "✅ better", "worse": "🔻 worse", "same": "= same", "": ""}
# The HTML page avoids emoji: a headless browser without an emoji font would draw empty boxes.
HTML_MARKS = {"better": "✓ better", "worse": "✗ worse", "same": "= same", "": ""}
BADGE_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "no_candidate": "➖", "no_reference": "⚠️", None: "⚪"}


@dataclass(frozen=True)
class _Inline:
    """How one format writes inline text."""

    plain: Callable[[str], str]
    code: Callable[[str], str]
    strong: Callable[[str], str]
    marks: dict[str, str]

    def __call__(self, text: Text) -> str:
        out = []
        for piece in text:
            match piece:
                case Code():
                    out.append(self.code(piece.text))
                case Strong():
                    out.append(self.strong(piece.text))
                case Mark():
                    out.append(self.marks[piece.kind])
                case _:
                    out.append(self.plain(piece))
        return "".join(out)


_md = _Inline(plain=str, code=lambda t: f"`{t}`", strong=lambda t: f"**{t}**", marks=MARKS)
# The page states the finding plainly (no bold), as it always has.
_html = _Inline(plain=html.escape, code=lambda t: f"<code>{html.escape(t)}</code>", strong=html.escape,
                marks={k: html.escape(v) for k, v in HTML_MARKS.items()})

# ---- Markdown --------------------------------------------------------------------------------


def _md_row(cells: tuple[Text | None, ...]) -> str:
    return "|" + "|".join(" " if c is None else f" {_md(c)} " for c in cells) + "|"


def _md_table(table: Table) -> list[str]:
    align = "|" + "|".join(":--" if a == "l" else "--:" for a in table.align) + "|"
    return [_md_row(table.header), align, *(_md_row(r) for r in table.rows)]


def _md_image(image: Image, assets_rel: str) -> str:
    return f"![{image.alt}]({assets_rel}/{image.path.name})"


def _md_block(block: Block, assets_rel: str) -> list[str]:
    match block:
        case Paragraph():
            return [_md(block.text)]
        case Table():
            return _md_table(block)
        case Image():
            return [_md_image(block, assets_rel)]
    raise TypeError(f"not a report block: {block!r}")


def _md_section(section: Section, assets_rel: str) -> list[str]:
    lines = [f"#### {_md(section.title)}", ""]
    for block in section.blocks:
        lines += [*_md_block(block, assets_rel), ""]
    return lines


def render_markdown(doc: Document, assets_rel: str = ASSETS_DIR) -> str:
    """The PR comment: verdict, drift badge, metrics table and plots above a collapsed details section.

    Images are linked as ``<assets_rel>/<file name>``, relative to report.md.
    """
    drift_line = f"{BADGE_ICONS.get(doc.drift_status, '⚪')} **{doc.drift_badge}**"
    lines = [
        f"## {doc.icon} {doc.verdict}: {doc.headline}",
        "",
        doc.reason,
        "",
        f"{drift_line}{' · ' + doc.top_drift if doc.top_drift else ''}",
        "",
    ]
    if doc.metrics is not None:
        lines += [*_md_table(doc.metrics), ""]
    lines += [_md(doc.ci), ""]
    if doc.quality:
        lines += [_md(doc.quality), ""]
    lines += [f"Code {doc.code} · data {doc.data}", ""]
    if doc.figures:
        lines += [" ".join(_md_image(f, assets_rel) for f in doc.figures), ""]
    lines += [f"<details><summary>{doc.summary}</summary>", ""]
    for section in doc.details:
        lines += _md_section(section, assets_rel)
    lines += ["</details>", ""]
    return "\n".join(lines)


# ---- HTML ------------------------------------------------------------------------------------


def _html_cell(tag: str, cell: Text | None) -> str:
    if cell is None:
        return f"<{tag}></{tag}>"
    mark = next((p for p in cell if isinstance(p, Mark)), None)
    css = f" class='{mark.kind}'" if mark is not None else ""
    return f"<{tag}{css}>{_html(cell)}</{tag}>"


def _html_table(table: Table) -> str:
    css = f" class='{table.css}'" if table.css else ""
    head = "".join(_html_cell("th", c) for c in table.header)
    body = "".join("<tr>" + "".join(_html_cell("td", c) for c in row) + "</tr>" for row in table.rows)
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _html_image(image: Image) -> str:
    return f"<img alt='{html.escape(image.alt)}' src='{_data_uri(image.path)}'>"


def _html_block(block: Block) -> str:
    match block:
        case Paragraph():
            return f"<p>{_html(block.text)}</p>"
        case Table():
            return _html_table(block)
        case Image():
            return _html_image(block)
    raise TypeError(f"not a report block: {block!r}")


def _html_section(section: Section) -> str:
    return "\n".join([f"<h4>{_html(section.title)}</h4>", *(_html_block(b) for b in section.blocks)])


def _figure(image: Image) -> str:
    css = " class='wide'" if image.wide else ""
    return f"<figure{css}>{_html_image(image)}</figure>"


def render_html(doc: Document) -> str:
    """The same report as one self-contained page (inline CSS, images as data URIs).

    Raises:
        OSError: an image of the document cannot be read.
    """
    e = html.escape
    return Template(TEMPLATE.read_text()).substitute(
        title=e(f"{doc.verdict}: {doc.headline}"),
        level=doc.level,
        verdict=e(doc.verdict),
        headline=e(doc.headline),
        reason=e(doc.reason),
        drift_class=doc.drift_status or "none",
        drift_badge=e(doc.drift_badge),
        drift_word=e(doc.drift_word),
        top_drift=e(doc.top_drift),
        table=_html_table(doc.metrics) if doc.metrics is not None else "",
        ci=_html(doc.ci),
        quality=_html(doc.quality),
        code=e(doc.code),
        data=e(doc.data),
        figures="".join(_figure(f) for f in doc.figures),
        summary=e(doc.summary),
        details="\n".join(_html_section(s) for s in doc.details),
    )
