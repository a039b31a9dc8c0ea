"""The verdict on a PR: the merge rules of docs/SOP.md, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from soilci.report.blocks import fmt_pct
from soilci.report.compare import RmseDifference, size_word

READY, REVIEW, BLOCK, NOT_COMPARABLE = "ready", "review", "block", "not_comparable"
VERDICT_TITLES = {READY: "Ready to merge", REVIEW: "Needs review", BLOCK: "Do not merge",
                  NOT_COMPARABLE: "Not comparable"}
VERDICT_ICONS = {READY: "🟢", REVIEW: "🟡", BLOCK: "🔴", NOT_COMPARABLE: "🟣"}


@dataclass(frozen=True)
class Verdict:
    """``level`` is READY, REVIEW, BLOCK or NOT_COMPARABLE; ``reason`` is one lower-case clause without a full stop."""

    level: str
    reason: str

    @property
    def title(self) -> str:
        return VERDICT_TITLES[self.level]

    @property
    def icon(self) -> str:
        return VERDICT_ICONS[self.level]


def _relative(difference: RmseDifference, base_metrics: dict | None, pr_metrics: dict | None) -> float:
    """The RMSE change as a fraction of the base's, from the metrics (the headline's and the table's
    source: metrics.json, every benchmark sample); the paired bootstrap's only when a side has none."""
    base, pr = (base_metrics or {}).get("rmse"), (pr_metrics or {}).get("rmse")
    return (pr - base) / base if base and pr is not None else difference.relative


def _size(relative: float, direction: str) -> str:
    """``clearly worse (+7.5%)``: the size word (compare.SLIGHT_MAX), the direction and the relative change."""
    return f"{size_word(relative)} {direction} ({fmt_pct(relative)})"


def decide(
    *,
    drift_status: str | None,
    pr_metrics: dict[str, float] | None,
    base_metrics: dict[str, float] | None,
    difference: RmseDifference | None,
    stale: list[str] | None,
    rmse_max: float | None,
    incomparable: str | None = None,
    accepted: str = "",
    unaccepted: str = "",
    unaccepted_result: str = "drift",
    others: str = "",
    failure: str = "",
    replaced_base: str = "",
    conflicts: str = "",
    not_run: str = "",
    filled: str = "",
) -> Verdict:
    """Apply docs/SOP.md's merge rules in order; the first that matches decides.

    Args:
        drift_status: "pass", "warn", "fail", "no_candidate" (the PR adds no samples), "no_reference" (no base
            batch is unchanged: the base has none, or the branch replaced or removed them), or None when the
            drift gate did not run.
        pr_metrics, base_metrics: metrics.json of each side (None: none); RMSE in the target's unit.
        difference: the paired bootstrap of the RMSE change (None: no paired predictions).
        stale: stages not up to date in the working tree (None or []: none, or DVC cannot tell).
        rmse_max: ``evaluate.rmse_max``, the RMSE ceiling (None: no ceiling).
        incomparable: why base and PR measure different things (``comparable.incomparability``);
            then nothing is compared and the verdict is never READY.
        accepted: the candidate batches whose drift a lead accepted in batch.yaml, with who and why
            (``DriftResult.accepted_text``); unaccepted: the batches without acceptance that keep the gate
            failing, and ``unaccepted_result`` why: ``drift``, or ``too few rows`` to be tested on their own;
            others: the new batches without acceptance (with rows) beside the accepted ones, "" if none.
        failure: why the run's failed stage stopped (``runs.stage_failure``), "" if none failed.
        replaced_base: with ``no_reference``, the base's batches the branch replaced or removed, in words
            (``inputs.replaced_base``): then the base has batches, none unchanged; "" when it has none.
        conflicts: copies of one spectrum with different lab values (``inputs.value_conflicts``), "" if none.
        not_run: the commit (``abc1234``, ``with these uncommitted changes``) no pipeline run is of, when
            stages are stale and the latest run is of another tree (``runs.latest_run``); "" otherwise.
        filled: pending samples whose lab values the branch's batches bring (``changes.filled_by_branch``),
            "" if none: with ``no_candidate`` the PR sent lab values, not no samples.
        pr_metrics must be this tree's only (``context.build_context`` drops an earlier run's).

    The percentages are the RMSE change in the metrics (as the headline and the metrics table show it);
    the paired bootstrap decides only whether the change is real.
    """
    rel = _relative(difference, base_metrics, pr_metrics) if difference is not None else 0.0
    # 1-4: do not merge
    if drift_status == "fail" and unaccepted and unaccepted_result == "too few rows":
        return Verdict(BLOCK, f"the drift gate failed: the batches without a drift acceptance ({unaccepted}) have "
                              "fewer rows than drift.min_rows, so they could not be tested for drift on their "
                              "own apart from the accepted ones")
    if drift_status == "fail" and unaccepted:
        return Verdict(BLOCK, f"the drift gate failed: batches without a drift acceptance ({unaccepted}) differ "
                              "from the reference set, whatever the accepted ones do")
    if drift_status == "fail":
        return Verdict(BLOCK, "the drift gate failed: the incoming samples differ from the reference set")
    # Before the stale rule: a run that stopped at evaluate's own gate leaves evaluate stale, with metrics.
    if rmse_max is not None and pr_metrics and "rmse" in pr_metrics and pr_metrics["rmse"] > rmse_max:
        return Verdict(BLOCK, f"benchmark RMSE {pr_metrics['rmse']:.3f} is above evaluate.rmse_max {rmse_max:g}")
    if stale or pr_metrics is None or "rmse" not in pr_metrics:
        missing = f" (not up to date: {', '.join(stale)})" if stale else ""
        if not_run:
            return Verdict(BLOCK, f"the pipeline has not been run for this commit ({not_run}), so there are no "
                                  f"current benchmark metrics{missing}")
        stopped = f"; {failure}" if failure else ""
        return Verdict(BLOCK, f"the pipeline did not finish, so there are no current benchmark metrics{missing}"
                              f"{stopped}")
    # 4a: different targets or benchmarks: the absolute numbers are all there is
    if incomparable:
        return Verdict(NOT_COMPARABLE, "base and PR measure different things, so their numbers are not compared: "
                                       "judge the PR's on their own")
    if difference is not None and difference.finding == "degradation":
        return Verdict(BLOCK, f"benchmark RMSE is {_size(rel, 'worse')}, and the difference is real "
                              "(95% CI above 0)")
    # 5-8: needs review
    if drift_status == "warn" and accepted:
        rest = (f"the other new batches, {others}, do not drift on their own" if others
                else "there is no other new batch")
        return Verdict(REVIEW, f"drift accepted for batch {accepted} (batch.yaml drift_acceptance); {rest}: check "
                               "the accepted batch before merging")
    if drift_status == "warn":
        return Verdict(REVIEW, "the drift gate warned: check the drifted features before merging")
    if drift_status is None:
        return Verdict(REVIEW, "the drift gate did not run")
    if drift_status == "no_reference" and replaced_base:
        return Verdict(REVIEW, f"the branch replaced or removed every library batch of the base ({replaced_base}), "
                               "so no unchanged batch is left to compare the new samples with and they were not "
                               "checked for drift: compare them with the base's version before merging")
    if drift_status == "no_reference":
        return Verdict(REVIEW, "the base has no library batches yet, so the new samples could not be checked "
                               "for drift: look at them before merging")
    if conflicts:
        return Verdict(REVIEW, f"the library holds one spectrum with two different lab values ({conflicts}); the "
                               "first labelled copy was trained on: check which value is right")
    if base_metrics is None or "rmse" not in base_metrics:
        return Verdict(REVIEW, "no base metrics to compare with (first run): judge the absolute numbers")
    if difference is None or difference.finding == "too few samples":
        return Verdict(REVIEW, "base and PR share too few benchmark samples to compare them")
    if difference.finding == "noise" and difference.delta > 0:
        return Verdict(REVIEW, f"benchmark RMSE is {_size(rel, 'worse')}, but within noise (95% CI contains 0)")
    # 9: ready
    reason = {
        "improvement": f"benchmark RMSE is {_size(rel, 'better')}, and the improvement is real",
        "no change": "the model's benchmark predictions are unchanged",
        "noise": f"benchmark RMSE is no worse ({fmt_pct(rel)}, within noise)",
    }[difference.finding]
    drift = "no data drift"
    if drift_status == "no_candidate":
        drift = f"no new spectra; {filled}" if filled else "no new samples"
    return Verdict(READY, f"{reason}; {drift}")
