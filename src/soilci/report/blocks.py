"""The report's content model, format-free (inline text, blocks, sections, the document), and its numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class _Span:
    text: str


class Code(_Span):
    """Inline code: a revision, a file, a param."""


class Strong(_Span):
    """The finding a sentence leads to (bold in Markdown)."""


@dataclass(frozen=True)
class Mark:
    """better, worse, same or "" (no mark): each format draws its own symbol."""

    kind: str


Inline = str | Code | Strong | Mark
Text = tuple[Inline, ...]


@dataclass(frozen=True)
class Paragraph:
    text: Text


@dataclass(frozen=True)
class Table:
    """``align`` has one letter a column: ``l`` or ``r``; a None cell is left blank."""

    header: tuple[Text | None, ...]
    align: str
    rows: tuple[tuple[Text | None, ...], ...]
    css: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG; ``wide`` when it spans the page (the drift plot, above the fold)."""

    alt: str
    path: Path
    wide: bool = False


Block = Paragraph | Table | Image


@dataclass(frozen=True)
class Section:
    """A titled part of the collapsed details."""

    title: Text
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """What the report says, format-free: the verdict first, the evidence after, details collapsed."""

    level: str  # READY, REVIEW or BLOCK: the page's colour
    icon: str
    verdict: str  # "Ready to merge", ...
    headline: str  # "RMSE 0.686 → 0.577 (-0.109)"
    reason: str  # a sentence
    drift_status: str | None
    drift_word: str
    drift_badge: str
    top_drift: str
    metrics: Table | None
    ci: Text
    quality: Text  # absolute quality in context (RPD class) and the size words' thresholds
    code: str
    data: str
    figures: tuple[Image, ...]
    summary: str
    details: tuple[Section, ...]


# ---- numbers as the report writes them -------------------------------------------------------


def fmt_num(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def fmt_pct(relative: float) -> str:
    """A relative change as the report writes it everywhere: ``+7.5%`` (one decimal, sign always)."""
    return f"{relative * 100:+.1f}%"


def fmt_int(value) -> str:
    return "n/a" if value is None else f"{int(value)}"


def fmt_p(value) -> str:
    try:
        return f"{float(value):.2g}"
    except (TypeError, ValueError):
        return "n/a"

