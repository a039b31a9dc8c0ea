"""Everything one report says, gathered once: both revisions, drift, the comparison, the verdict, images."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from soil_contracts.records import RunRecord
from soilci.report.changes import (
    Changes,
    filled_by_branch,
    read_changes,
    read_library,
    replaced_base,
    value_conflicts,
)
from soilci.report.comparable import incomparability
from soilci.report.compare import RmseDifference, bootstrap_rmse_difference
from soilci.report.drift import DriftResult, read_drift
from soilci.report.inputs import Revision, read_base, read_rmse_ceiling, read_working_tree
from soilci.report.plots import copy_drift_plot, plot_errors, plot_predicted_vs_observed, reset_assets
from soilci.report.runs import gate_stop, latest_run, stage_failure, stale_stages
from soilci.report.verdict import Verdict, decide


@dataclass(frozen=True)
class ReportContext:
    """The facts behind a report.

    ``pr`` holds only what this run produced: when the run stopped (a stage is stale, or the drift gate
    failed), the metrics, predictions and model left in the tree by an earlier run are not this PR's,
    so ``pr`` has none and ``stopped`` is true. When this tree's run stopped at evaluate's gate
    (``evaluate.rmse_max``), its metrics are this PR's and ``stopped`` is false. ``run`` is the latest
    run only when it is of this tree (``runs.latest_run``).
    """

    base: Revision
    pr: Revision
    drift: DriftResult
    difference: RmseDifference | None
    verdict: Verdict
    stale: list[str] | None
    run: RunRecord | None
    rmse_max: float | None
    plots: dict[str, Path]  # "PR" / base label -> image file
    drift_plot: Path | None
    incomparable: str | None = None  # why base and PR are not compared (None: they are)
    changes: Changes | None = None
    stopped: bool = False  # the run did not reach the evaluation: nothing of ``pr`` is from a model
    scatters: dict[str, Path] = field(default_factory=dict)  # "PR" / base label -> predicted-vs-observed image
    failure: str = ""  # why the run's failed stage stopped (runs.stage_failure), "" if none did


def build_context(repo: Path, base_ref: str, assets: Path) -> ReportContext:
    """Read both revisions, compare and decide; draw the images into ``assets`` (emptied first).

    Raises:
        ConfigError: not a git repository, no such ``base_ref``, or an unreadable result file.
    """
    repo = Path(repo).resolve()
    base = read_base(repo, base_ref)
    drift = read_drift(repo)
    stale = stale_stages(repo)
    run = latest_run(repo)  # None unless the latest run is of this tree (commit and uncommitted changes)
    said_no = gate_stop(run)
    if stale and "drift" in stale and said_no != "drift":  # drift.json is another tree's, or an earlier run's
        drift = DriftResult(None, "The drift gate did not run on this tree.", None, None, [], None)
    # evaluate's gate said no (evaluate.rmse_max): its metrics and predictions are this run's, and the
    # verdict quotes them (SOP rule 2), as a failed drift gate's drift.json is quoted.
    evaluated = said_no == "evaluate" and stale is not None and set(stale) <= {"evaluate"}
    # A stale stage, or a gate that stopped the run: what an earlier run left in the tree (metrics,
    # predictions, model) does not describe this PR. Everything below reads the current side only.
    stopped = (bool(stale) and not evaluated) or drift.status == "fail"
    pr = read_working_tree(repo)
    current = replace(pr, metrics=None, predictions=None, identity=None) if stopped else pr
    incomparable = None if stopped else incomparability(base.identity, current.identity,
                                                         base_has_metrics=base.metrics is not None)
    difference = None
    if base.predictions is not None and current.predictions is not None and not incomparable:
        difference = bootstrap_rmse_difference(base.predictions, current.predictions)
    rmse_max = read_rmse_ceiling(repo)
    failure = stage_failure(repo, run) if stale else ""  # an old run's failure says nothing of a current tree
    library = read_library(repo)
    replaced = replaced_base(library)
    if drift.status == "no_reference" and replaced:
        drift = replace(drift, replaced_base=replaced, summary=(
            f"No unchanged reference: the base has library batches, but the branch replaced or removed every one "
            f"of them ({replaced}), so the new samples were compared with nothing."))
    filled = filled_by_branch(library)
    if drift.status == "no_candidate" and filled:
        drift = replace(drift, filled=filled, summary=(
            f"No new spectra relative to the base, so nothing to test for drift; {filled}, which are trained on "
            "from now on."))
    not_run = ""
    if stale and run is None:
        not_run = f"{pr.short}{' with these uncommitted changes' if pr.dirty else ''}"
    verdict = decide(
        drift_status=drift.status,
        pr_metrics=current.metrics,
        base_metrics=base.metrics,
        difference=difference,
        stale=stale,
        rmse_max=rmse_max,
        incomparable=incomparable,
        accepted=drift.accepted_text,
        unaccepted=drift.unaccepted_drift,
        unaccepted_result=drift.unaccepted_result,
        others=drift.other_batches,
        failure=failure,
        replaced_base=drift.replaced_base,
        conflicts=value_conflicts(library),
        not_run=not_run,
        filled=filled,
    )
    reset_assets(assets)
    # Errors in different units or on different samples do not share axes: draw the PR's alone.
    plotted_base = replace(base, predictions=None) if incomparable else base
    changes = read_changes(repo, base.sha, base.model_text, library)
    if stopped:
        changes = replace(changes, model=None)
    return ReportContext(
        base=base, pr=current, drift=drift, difference=difference, verdict=verdict, stale=stale,
        run=run, rmse_max=rmse_max, plots=plot_errors(current, plotted_base, assets),
        drift_plot=copy_drift_plot(drift, assets), incomparable=incomparable, changes=changes, stopped=stopped,
        scatters=plot_predicted_vs_observed(current, plotted_base, assets), failure=failure,
    )
