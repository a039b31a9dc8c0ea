"""The report as one document (headline, tables, sections), built once and rendered as Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soilci.report.compare import COUNTS, MetricChange, RmseDifference, metric_changes
from soilci.report.context import ReportContext
from soilci.report.inputs import reproduced_stages

# ---- the model: inline text, blocks, the document -------------------------------------------


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
    code: str
    data: str
    figures: tuple[Image, ...]
    summary: str
    details: tuple[Section, ...]


# ---- numbers as the report writes them -------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _int(value) -> str:
    return "n/a" if value is None else f"{int(value)}"


def _p(value) -> str:
    try:
        return f"{float(value):.2g}"
    except (TypeError, ValueError):
        return "n/a"


def _change(change: MetricChange) -> str:
    if change.delta is None:
        return "n/a"
    if change.mark == "same":
        return "±0"
    rel = f" ({change.relative * 100:+.1f}%)" if change.relative is not None else ""
    return f"{change.delta:+.3f}{rel}"


def _finding_text(diff: RmseDifference | None) -> str:
    if diff is None:
        return "no paired benchmark predictions to compare"
    return {
        "improvement": "a real improvement",
        "degradation": "a real degradation",
        "no change": "no change: identical predictions",
        "noise": "within noise: not a real difference",
        "too few samples": f"only {diff.n_pairs} paired samples: cannot tell",
    }[diff.finding]


# ---- above the fold --------------------------------------------------------------------------


def _headline(ctx: ReportContext) -> str:
    b = (ctx.base.metrics or {}).get("rmse")
    p = (ctx.pr.metrics or {}).get("rmse") if not ctx.stale else None
    if b is not None and p is not None:
        return f"RMSE {_num(b)} → {_num(p)} ({p - b:+.3f})"
    if p is not None:
        return f"RMSE {_num(p)}"
    if ctx.drift.status == "fail":
        return "stopped at the drift gate"
    return "benchmark not evaluated"


def _versions(ctx: ReportContext) -> tuple[str, str]:
    code = f"{ctx.base.short} → {ctx.pr.short}{' + uncommitted changes' if ctx.pr.dirty else ''}"
    bv, pv = ctx.base.data_version, ctx.pr.data_version
    data = f"{bv or 'n/a'} → {pv or 'n/a'}" + (" (same)" if bv and bv == pv else " (changed)" if bv and pv else "")
    return code, data


def _ci(ctx: ReportContext) -> Text:
    d = ctx.difference
    if ctx.stale:
        return ("Not evaluated: the run stopped before the benchmark evaluation.",)
    if ctx.base.metrics is None:
        return ("No base metrics at this revision (a first PR): nothing to compare with yet.",)
    if d is None:
        return ("The base and PR benchmark predictions share no sample; the change cannot be tested.",)
    pct = round(d.confidence * 100)
    return (
        (f"RMSE difference (PR − {ctx.base.label}) {d.delta:+.3f}, {pct}% CI [{d.low:+.3f}, {d.high:+.3f}] "
         f"(paired bootstrap, {d.n_pairs} benchmark samples): "),
        Strong(_finding_text(d)),
        ".",
    )


def _top_drift(ctx: ReportContext, n: int = 3) -> str:
    if not ctx.drift.top:
        return ""
    items = [f"{t.get('name')} (p={_p(t.get('p_value'))})" for t in ctx.drift.top[:n]]
    return "Top drifted: " + ", ".join(items)


def _metrics_table(ctx: ReportContext) -> Table | None:
    pr_metrics = (ctx.pr.metrics if not ctx.stale else None) or {}
    rows = tuple(
        ((c.spec.label,), (_num(c.base),), (_num(c.pr),), (_change(c), " ", Mark(c.mark)))
        for c in metric_changes(ctx.base.metrics or {}, pr_metrics)
    )
    if not rows:
        return None
    header = (("Metric",), (f"{ctx.base.label} ", Code(ctx.base.short)), ("PR ", Code(ctx.pr.short)), ("Change",))
    return Table(header, "lrrl", rows, css="metrics")


def _figures(ctx: ReportContext) -> tuple[Image, ...]:
    images = [Image(f"{label} prediction error", path)
              for label, path in sorted(ctx.plots.items(), key=lambda kv: kv[0] != "PR")]
    if ctx.drift.status == "fail" and ctx.drift_plot is not None:  # what failed comes first
        images.insert(0, Image("drift", ctx.drift_plot, wide=True))
    return tuple(images)


# ---- details ---------------------------------------------------------------------------------


def _benchmark(ctx: ReportContext) -> Section | None:
    if not (ctx.pr.metrics or ctx.base.metrics):
        return None
    rows = [((label,), (_int((ctx.base.metrics or {}).get(key)),), (_int((ctx.pr.metrics or {}).get(key)),))
            for key, label in COUNTS]
    if ctx.rmse_max is not None:
        rows.append((("RMSE ceiling (", Code("evaluate.rmse_max"), ")"), None, (f"{ctx.rmse_max:g}",)))
    return Section(("Benchmark metrics",), (Table((None, (ctx.base.label,), ("PR",)), "lrr", tuple(rows)),))


def _bootstrap(ctx: ReportContext) -> Section | None:
    d = ctx.difference
    if d is None:
        return None
    text = (f"RMSE on the {d.n_pairs} paired samples: {ctx.base.label} {d.rmse_base:.4f}, PR {d.rmse_pr:.4f}; "
            f"{d.resamples} resamples of benchmark samples (seed {d.seed}), percentile interval. "
            "A real change is one whose interval excludes 0.")
    return Section(("Paired bootstrap",), (Paragraph((text,)),))


def _drift(ctx: ReportContext) -> Section:
    drift = ctx.drift
    blocks: list[Block] = [Paragraph((drift.summary or "",))]
    if drift.method:
        blocks.append(Paragraph((f"Method: {drift.method}, alpha {drift.alpha}",)))
    if drift.top:
        rows = tuple(((str(t.get("name")),), (str(t.get("kind", "")),), (_p(t.get("statistic")),),
                      (_p(t.get("p_value")),)) for t in drift.top[:10])
        blocks.append(Table((("drifted",), ("kind",), ("statistic",), ("p-value",)), "llrr", rows))
    if ctx.drift_plot is not None:
        blocks.append(Image("drift", ctx.drift_plot))
    return Section((drift.badge,), tuple(blocks))


def _versions_compared(ctx: ReportContext) -> Section:
    base, pr = ctx.base, ctx.pr
    ref = f" ({base.ref})" if base.ref != base.sha else ""
    rows = [(("git",), (Code(base.sha or "n/a"), ref), (Code(pr.sha or "n/a"),))]
    rows += [((path,), (Code(base.data_files.get(path, "n/a")[:12]),), (Code(pr.data_files.get(path, "n/a")[:12]),))
             for path in sorted(set(base.data_files) | set(pr.data_files))]
    blocks: list[Block] = [Table((None, (base.label,), ("PR",)), "lll", tuple(rows))]
    if ctx.stale:
        blocks.append(Paragraph((f"Not up to date in this tree: {', '.join(ctx.stale)}.",)))
    return Section(("Versions compared",), tuple(blocks))


def _run(ctx: ReportContext) -> Section | None:
    run = ctx.run
    if run is None or not run.stages:
        return None
    rows = tuple(
        ((s.name,), (s.outcome,), (f"{s.seconds:.1f} s" if s.seconds is not None else "",),
         (Code(s.log),) if s.log else ("",))
        for s in run.stages
    )
    blocks: list[Block] = [Table((("stage",), ("outcome",), ("time",), ("log",)), "llrl", rows)]
    reproduced = reproduced_stages(run)
    if reproduced:
        blocks.append(Paragraph((
            f"This run reproduced {', '.join(reproduced)}: commit ", Code("dvc.lock"), ", ", Code("metrics/"),
            " and ", Code("reports/drift.json"), " with the PR so main records these results.",
        )))
    return Section(("Run ", Code(run.run_id), f" ({run.mode})"), tuple(blocks))


def build_document(ctx: ReportContext) -> Document:
    """The report's content from its facts; no format is decided here."""
    v = ctx.verdict
    code, data = _versions(ctx)
    sections = (_benchmark(ctx), _bootstrap(ctx), _drift(ctx), _versions_compared(ctx), _run(ctx))
    return Document(
        level=v.level,
        icon=v.icon,
        verdict=v.title,
        headline=_headline(ctx),
        reason=f"{v.reason[0].upper()}{v.reason[1:]}.",
        drift_status=ctx.drift.status,
        drift_word=ctx.drift.word,
        drift_badge=ctx.drift.badge,
        top_drift=_top_drift(ctx),
        metrics=_metrics_table(ctx),
        ci=_ci(ctx),
        code=code,
        data=data,
        figures=_figures(ctx),
        summary="Details: metrics, drift, versions, run",
        details=tuple(section for section in sections if section is not None),
    )
