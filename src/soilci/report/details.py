"""The report's collapsed details: benchmark counts, the bootstrap, drift, versions and the run."""

from __future__ import annotations

import json

from soil_contracts.library import LibrarySummary
from soilci.report.blocks import Block, Code, Image, Paragraph, Section, Strong, Table, Text, fmt_int, fmt_p
from soilci.report.changes import ABSENT, Changes, value_conflicts
from soilci.report.compare import COUNTS
from soilci.report.context import ReportContext
from soilci.report.runs import reproduced_stages


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
    if drift.status is None and ctx.failure.startswith("drift "):  # the gate stopped before a verdict: say why
        blocks.append(Paragraph(("It stopped before a verdict: ", Strong(ctx.failure), ".")))
    if drift.method:
        blocks.append(Paragraph((f"Method: {drift.method}, alpha {drift.alpha}",)))
    if drift.accepted:
        rows = tuple(((str(a.get("batch")),), (fmt_int(a.get("rows")),), (str(a.get("by")),), (str(a.get("reason")),))
                     for a in drift.accepted)
        blocks.append(Paragraph((Strong("Drift accepted"), " in the batches' ", Code("batch.yaml"),
                                 " (", Code("drift_acceptance"), "), reviewed with this PR:")))
        blocks.append(Table((("batch",), ("rows",), ("accepted by",), ("reason",)), "lrll", rows))
    if drift.others and drift.others.get("result"):
        others = ", ".join(drift.others.get("batches") or [])
        listed = f"The other new batches ({others}, {fmt_int(drift.others.get('rows'))} rows)"
        if drift.unaccepted_result == "too few rows":  # the gate could not clear them: say so, not "tested"
            blocks.append(Paragraph((f"{listed} were ", Strong("not tested on their own"), ": fewer rows than ",
                                     Code("drift.min_rows"), (", so the accepted batches' drift cannot be set "
                                     "apart from theirs."))))
        else:
            blocks.append(Paragraph(((f"{listed} tested on their own: "), Strong(str(drift.others['result'])), ".")))
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
    rows = [(("git",), (Code(base.sha or "n/a"), ref), (Code(pr.sha or "n/a"),)),
            (("results from",), (base.source,), (pr.source,))]
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
    if ctx.failure:
        blocks.append(Paragraph(("Stopped at ", Strong(ctx.failure), ".")))
    reproduced = reproduced_stages(run)
    if reproduced:
        blocks.append(Paragraph((
            f"This run reproduced {', '.join(reproduced)}. Nothing to commit: ", Code("dvc.lock"), ", ",
            Code("metrics/"), " and ", Code("reports/"), (" stay out of git; main's workflow publishes main's "
            "results by commit to the DVC remote ("), Code("soilci pipeline --push"), ").",
        )))
    return Section(("Run ", Code(run.run_id), f" ({run.mode})"), tuple(blocks))



# ---- what changed ----------------------------------------------------------------------------

MAX_FILES = 20


def _value(value) -> Text:
    if value is ABSENT:
        return ("—",)
    return (Code(json.dumps(value) if not isinstance(value, str) else value),)


def _params(changes: Changes) -> list[Block]:
    if not changes.params:
        return [Paragraph((Strong("Params"), ": no key of ", Code("params.yaml"), " changed."))]
    rows = tuple(((Code(c.key),), _value(c.old), _value(c.new)) for c in changes.params)
    return [Paragraph((Strong("Params"), f": {len(rows)} key(s) of ", Code("params.yaml"), " changed.")),
            Table((("key",), ("base",), ("PR",)), "lll", rows)]


def _row_arithmetic(lib: LibrarySummary) -> str:
    """``368 training rows = 322 reference + 46 new - 0 pending; 46 duplicate rows dropped ...``: the sums add up.

    Reference and new rows are each sample once (prepare drops duplicates from the drift gate's inputs and
    from training alike); pending rows (no lab value yet) are tested for drift but not trained on.
    """
    pending = sum(b.pending for b in lib.batches)
    text = f"{lib.training_rows} training rows = {lib.reference_rows} reference + {lib.candidate_rows} new"
    if pending:
        text += f" - {pending} pending (no lab value yet; drift-tested, not trained on)"
    dropped = sum(b.duplicates for b in lib.batches)
    if dropped:
        text += (f"; {dropped} duplicate row{'s' * (dropped != 1)} dropped (the spectrum of a sample already in "
                 "the library: tested and trained on once)")
    filled = sum(b.filled for b in lib.batches)
    if filled:
        text += (f", {filled} of them pending copies whose lab value another copy brings (that copy is trained "
                 "on)")
    conflicts = sum(b.conflicts for b in lib.batches)
    if conflicts:
        text += (f"; {conflicts} duplicate{'s' * (conflicts != 1)} with a different lab value than the copy "
                 f"trained on (the first labelled copy is kept): {value_conflicts(lib)}")
    return text


def _data(changes: Changes) -> list[Block]:
    lib = changes.library
    if lib is None:
        return [Paragraph((Strong("Data"), ": no ", Code("data/library.json"), " in this tree (prepare did not run)."))]
    bench = "changed" if lib.benchmark_changed else "unchanged"
    rows = tuple(((b.id,), (b.status + (", drift accepted" if b.accepted_drift else ""),), (str(b.rows),), (str(b.pending),), (str(b.duplicates),), (str(b.trained),))
                 for b in lib.batches)
    return [Paragraph((Strong("Data"), f": {_row_arithmetic(lib)}; benchmark {lib.benchmark_rows} rows, {bench}.")),
            Table((("batch",), ("status",), ("rows",), ("pending",), ("duplicates",), ("trained",)), "llrrrr", rows)]


def _chosen(meta) -> Text:
    return (meta.selection.chosen,) if meta is not None and meta.selection else ("n/a",)


def _family_scores(meta) -> Text:
    """Every family member's inner-CV RMSE, the chosen one in bold."""
    if meta is None or meta.selection is None:
        return ("n/a",)
    return tuple(part for i, m in enumerate(meta.selection.members) for part in (
        *((", ",) if i else ()), Strong(f"{m.name} {m.cv_rmse:.4g}") if m.name == meta.selection.chosen
        else f"{m.name} {m.cv_rmse:.4g}"))


def _rule(meta) -> Text:
    """The selection rule's constants: the tolerance against the first member and the inner folds."""
    if meta is None or meta.selection is None:
        return ("n/a",)
    sel, first = meta.selection, meta.selection.members[0].name
    rule = (f"lowest if it beats {first} by > {sel.tolerance_se:g} SE" if sel.rule == "lowest_beats_first"
            else f"first within {sel.tolerance_se:g} SE of the lowest")
    return (f"{rule}; {sel.cv_folds}-fold x {sel.cv_repeats}; below {sel.min_rows} rows {first}",)


def _model(ctx: ReportContext) -> list[Block]:
    now, base = ctx.changes.model, ctx.changes.base_model
    if now is None:
        why = " (the run stopped before training)" if ctx.stopped else ""
        return [Paragraph((Strong("Model"), f": no model trained by this run{why}."))]
    base_counts = base.metrics if base is not None else (ctx.base.metrics or {})
    keys = sorted(set(now.best_params) | set(base.best_params if base else {}))
    rows = [(("model",), (base.model if base else "n/a",), (now.model,))]
    rows += [(("pipeline (", Code("train.family"), ")",), _chosen(base), _chosen(now)),
             (("inner-CV RMSE",), _family_scores(base), _family_scores(now)),
             (("selection rule",), _rule(base), _rule(now))]
    rows += [((Code(k),), _value(base.best_params.get(k, ABSENT)) if base else ("n/a",),
              _value(now.best_params.get(k, ABSENT))) for k in keys]
    rows.append((("training rows",), (fmt_int(base_counts.get("n_train")),), (fmt_int(now.metrics.get("n_train")),)))
    source = "" if base is not None else " (the base's model file is not in git: its training rows from its metrics)"
    return [Paragraph((Strong("Model"), f": hyperparameters chosen by cross-validation{source}.")),
            Table((None, (ctx.base.label,), ("PR",)), "lll", tuple(rows))]


def _code(changes: Changes) -> list[Block]:
    if not changes.code:
        return [Paragraph((Strong("Code"), ": no file under services/, src/ or libs/ changed."))]
    added = sum(f.added or 0 for f in changes.code)
    deleted = sum(f.deleted or 0 for f in changes.code)
    rows = tuple(((Code(f.path),), (f"+{f.added}" if f.added is not None else "binary",),
                  (f"−{f.deleted}" if f.deleted is not None else "",)) for f in changes.code[:MAX_FILES])
    more = f" (first {MAX_FILES} listed)" if len(changes.code) > MAX_FILES else ""
    return [Paragraph((Strong("Code"), (f": {len(changes.code)} file(s) changed under services/, src/, libs/, "
                       f"+{added} −{deleted} lines{more}."))),
            Table((("file",), ("added",), ("deleted",)), "lrr", rows)]


def what_changed(ctx: ReportContext) -> Section:
    """Params, data, model and code differences between the base and this tree."""
    c = ctx.changes
    return Section(("What changed since ", Code(ctx.base.short)),
                   (*_params(c), *_data(c), *_model(ctx), *_code(c)))
