"""The report as one document (headline, tables, sections), built once and rendered as Markdown and HTML."""

from __future__ import annotations

import numpy as np

from soilci.report.blocks import Code, Document, Image, Mark, Strong, Table, Text, fmt_num, fmt_p, fmt_pct
from soilci.report.compare import (
    RPD_ACCURATE,
    RPD_FAIR,
    SLIGHT_MAX,
    MetricChange,
    RmseDifference,
    metric_changes,
    rpd_class,
)
from soilci.report.context import ReportContext
from soilci.report.details import benchmark, bootstrap, drift, run, versions_compared, what_changed


def _change(change: MetricChange) -> str:
    if change.delta is None:
        return "n/a"
    if change.mark == "same":
        return "±0"
    rel = f" ({fmt_pct(change.relative)})" if change.relative is not None else ""
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
    cause = ctx.drift.attribution
    if ctx.drift.status == "fail" and cause:
        return f"drift: {cause}"
    headline = _numbers(ctx)
    return f"{headline} · drift: {cause}" if cause else headline


def _numbers(ctx: ReportContext) -> str:
    b = (ctx.base.metrics or {}).get("rmse")
    p = (ctx.pr.metrics or {}).get("rmse")
    if p is not None and ctx.incomparable:
        return ctx.incomparable
    if b is not None and p is not None:
        return f"RMSE {fmt_num(b)} → {fmt_num(p)} ({p - b:+.3f})"
    if p is not None:
        return f"RMSE {fmt_num(p)}"
    if ctx.drift.status == "fail":
        return "stopped at the drift gate"
    return "benchmark not evaluated"


def _versions(ctx: ReportContext) -> tuple[str, str]:
    code = f"{ctx.base.short} → {ctx.pr.short}{' + uncommitted changes' if ctx.pr.dirty else ''}"
    if ctx.base.metrics is not None and ctx.base.source != "git":  # say whose numbers, from where
        code += f" ({ctx.base.label}'s results of {ctx.base.short} from {ctx.base.source}"
        code += f"; {ctx.base.ref} is {ctx.base.asked[:7]}, not published yet)" if ctx.base.asked else ")"
    bv, pv = ctx.base.data_version, ctx.pr.data_version
    data = f"{bv or 'n/a'} → {pv or 'n/a'}" + (" (same)" if bv and bv == pv else " (changed)" if bv and pv else "")
    return code, data


def _ci(ctx: ReportContext) -> Text:
    d = ctx.difference
    if ctx.stopped:
        return ("Not evaluated: the run stopped before the benchmark evaluation.",)
    if ctx.base.metrics is None:
        looked = f" Main's published results: {ctx.base.note}." if ctx.base.note else ""
        return (f"No base metrics at this revision (a first PR): nothing to compare with yet.{looked}",)
    if ctx.incomparable:
        return ("Not compared: ", Strong(ctx.incomparable),
                ". Each column holds its own side's numbers, in its own target's unit; no change, no bootstrap.")
    if d is None:
        return ("The base and PR benchmark predictions share no sample; the change cannot be tested.",)
    pct = round(d.confidence * 100)
    return (
        (f"RMSE difference (PR − {ctx.base.label}) {d.delta:+.3f}, {pct}% CI [{d.low:+.3f}, {d.high:+.3f}] "
         f"(paired bootstrap, {d.n_pairs} benchmark samples): "),
        Strong(_finding_text(d)),
        ".",
    )


def _quality(ctx: ReportContext) -> Text:
    metrics = ctx.pr.metrics or {}
    rpd, rpiq = metrics.get("rpd"), metrics.get("rpiq")
    if rpd is None:
        return ()
    cls = f"RPD {rpd:.2f} is {rpd_class(rpd)}" if np.isfinite(rpd) else f"RPD {fmt_num(rpd)}"
    words = (f" Size words: slightly = an RMSE change under {SLIGHT_MAX:.0%} of the base RMSE, clearly = "
             f"{SLIGHT_MAX:.0%} or more." if ctx.difference is not None else "")
    return ("Absolute quality: ", Strong(cls),
            (f" (Chang et al. 2001: > {RPD_ACCURATE:g} accurate, {RPD_FAIR:g}–{RPD_ACCURATE:g} fair, < {RPD_FAIR:g} "
             f"poor); RPIQ {fmt_num(rpiq)} (Bellon-Maurel et al. 2010; no agreed classes).{words}"))


def _top_drift(ctx: ReportContext, n: int = 3) -> str:
    if not ctx.drift.top:
        return ""
    items = [f"{t.get('name')} (p={fmt_p(t.get('p_value'))})" for t in ctx.drift.top[:n]]
    return "Top drifted: " + ", ".join(items)


def _metrics_table(ctx: ReportContext) -> Table | None:
    pr_metrics = ctx.pr.metrics or {}
    if ctx.incomparable:  # each side's absolute numbers, labelled with what they are of
        def side(rev) -> Text:
            what = f" {rev.identity.label}" if rev.identity else " (target not recorded)"
            return (f"{rev.label} ", Code(rev.short), what)

        rows = tuple(((c.spec.label,), (fmt_num(c.base),), (fmt_num(c.pr),))
                     for c in metric_changes(ctx.base.metrics or {}, pr_metrics))
        return Table((("Metric",), side(ctx.base), side(ctx.pr)), "lrr", rows, css="metrics") if rows else None
    rows = tuple(
        ((c.spec.label,), (fmt_num(c.base),), (fmt_num(c.pr),), (_change(c), " ", Mark(c.mark)))
        for c in metric_changes(ctx.base.metrics or {}, pr_metrics)
    )
    if not rows:
        return None
    header = (("Metric",), (f"{ctx.base.label} ", Code(ctx.base.short)), ("PR ", Code(ctx.pr.short)), ("Change",))
    return Table(header, "lrrl", rows, css="metrics")


def _figures(ctx: ReportContext) -> tuple[Image, ...]:
    images = [Image(f"{label} prediction error", path)
              for label, path in sorted(ctx.plots.items(), key=lambda kv: kv[0] != "PR")]
    images += [Image(f"{label} predicted vs observed", path)
               for label, path in sorted(ctx.scatters.items(), key=lambda kv: kv[0] != "PR")]
    if ctx.drift.status == "fail" and ctx.drift_plot is not None:  # what failed comes first
        images.insert(0, Image("drift", ctx.drift_plot, wide=True))
    return tuple(images)


# ---- details ---------------------------------------------------------------------------------

def build_document(ctx: ReportContext) -> Document:
    """The report's content from its facts; no format is decided here."""
    v = ctx.verdict
    code, data = _versions(ctx)
    sections = (what_changed(ctx) if ctx.changes else None, benchmark(ctx), bootstrap(ctx), drift(ctx),
                versions_compared(ctx), run(ctx))
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
        quality=_quality(ctx),
        code=code,
        data=data,
        figures=_figures(ctx),
        summary="Details: what changed, metrics, drift, versions, run",
        details=tuple(section for section in sections if section is not None),
    )
