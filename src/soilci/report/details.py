"""The report's collapsed details: benchmark counts, the bootstrap, drift, versions and the run."""

from __future__ import annotations

from soilci.report.blocks import Block, Code, Image, Paragraph, Section, Table, fmt_int, fmt_p
from soilci.report.compare import COUNTS
from soilci.report.context import ReportContext
from soilci.report.inputs import reproduced_stages


def benchmark(ctx: ReportContext) -> Section | None:
    if not (ctx.pr.metrics or ctx.base.metrics):
        return None
    rows = [((label,), (fmt_int((ctx.base.metrics or {}).get(key)),), (fmt_int((ctx.pr.metrics or {}).get(key)),))
            for key, label in COUNTS]
    if ctx.rmse_max is not None:
        rows.append((("RMSE ceiling (", Code("evaluate.rmse_max"), ")"), None, (f"{ctx.rmse_max:g}",)))
    return Section(("Benchmark metrics",), (Table((None, (ctx.base.label,), ("PR",)), "lrr", tuple(rows)),))


def bootstrap(ctx: ReportContext) -> Section | None:
    d = ctx.difference
    if d is None:
        return None
    text = (f"RMSE on the {d.n_pairs} paired samples: {ctx.base.label} {d.rmse_base:.4f}, PR {d.rmse_pr:.4f}; "
            f"{d.resamples} resamples of benchmark samples (seed {d.seed}), percentile interval. "
            "A real change is one whose interval excludes 0.")
    return Section(("Paired bootstrap",), (Paragraph((text,)),))


def drift(ctx: ReportContext) -> Section:
    drift = ctx.drift
    blocks: list[Block] = [Paragraph((drift.summary or "",))]
    if drift.method:
        blocks.append(Paragraph((f"Method: {drift.method}, alpha {drift.alpha}",)))
    if drift.top:
        rows = tuple(((str(t.get("name")),), (str(t.get("kind", "")),), (fmt_p(t.get("statistic")),),
                      (fmt_p(t.get("p_value")),)) for t in drift.top[:10])
        blocks.append(Table((("drifted",), ("kind",), ("statistic",), ("p-value",)), "llrr", rows))
    if ctx.drift_plot is not None:
        blocks.append(Image("drift", ctx.drift_plot))
    return Section((drift.badge,), tuple(blocks))


def versions_compared(ctx: ReportContext) -> Section:
    base, pr = ctx.base, ctx.pr
    ref = f" ({base.ref})" if base.ref != base.sha else ""
    rows = [(("git",), (Code(base.sha or "n/a"), ref), (Code(pr.sha or "n/a"),))]
    rows += [((path,), (Code(base.data_files.get(path, "n/a")[:12]),), (Code(pr.data_files.get(path, "n/a")[:12]),))
             for path in sorted(set(base.data_files) | set(pr.data_files))]
    blocks: list[Block] = [Table((None, (base.label,), ("PR",)), "lll", tuple(rows))]
    if ctx.stale:
        blocks.append(Paragraph((f"Not up to date in this tree: {', '.join(ctx.stale)}.",)))
    return Section(("Versions compared",), tuple(blocks))


def run(ctx: ReportContext) -> Section | None:
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

