"""``write_report``: gather, decide, render once, and write report.md, report.html and report/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soil_contracts.files import write_text_atomic
from soilci.report.context import ReportContext, build_context
from soilci.report.document import build_document
from soilci.report.render import ASSETS_DIR, render_html, render_markdown
from soilci.report.verdict import Verdict


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote, and the verdict and facts behind it."""

    markdown: Path
    html: Path
    verdict: Verdict
    headline: str  # "RMSE 0.686 → 0.577 (-0.109)", as on the page
    context: ReportContext


def write_report(repo: Path, base_ref: str, out_dir: Path) -> ReportFiles:
    """Compare the working tree's run with ``base_ref`` and write report.md, report.html and report/.

    ``out_dir``/report/ (the PNGs report.md links to) is emptied first; both pages are written
    all-or-nothing.

    Raises:
        ConfigError: not a git repository, no such ``base_ref``, or an unreadable result file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(Path(repo), base_ref, out_dir / ASSETS_DIR)
    doc = build_document(ctx)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md_path, render_markdown(doc))
    write_text_atomic(html_path, render_html(doc))
    return ReportFiles(markdown=md_path, html=html_path, verdict=ctx.verdict, headline=doc.headline,
                       context=ctx)
