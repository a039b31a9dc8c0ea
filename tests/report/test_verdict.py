"""The verdict: docs/SOP.md's merge rules, applied in order."""

from __future__ import annotations

import pytest

from soilci.report.compare import RmseDifference
from soilci.report.verdict import BLOCK, NOT_COMPARABLE, READY, REVIEW, decide


def diff(finding: str, delta: float = -0.1) -> RmseDifference:
    low, high = {"improvement": (-0.2, -0.01), "degradation": (0.01, 0.2), "noise": (-0.05, 0.05)}[finding]
    return RmseDifference(n_pairs=92, rmse_base=1.0, rmse_pr=1.0 + delta, low=low, high=high, resamples=2000,
                          seed=1, confidence=0.95)


@pytest.mark.parametrize(
    ("kwargs", "level", "words"),
    [
        ({"drift_status": "fail"}, BLOCK, "drift gate failed"),
        ({"stale": ["train", "evaluate"]}, BLOCK, "not up to date: train, evaluate"),
        ({"pr_metrics": None}, BLOCK, "did not finish"),
        ({"rmse_max": 0.5}, BLOCK, "benchmark RMSE 0.900 is above evaluate.rmse_max 0.5"),
        ({"incomparable": "target changed", "rmse_max": 0.5}, BLOCK, "above evaluate.rmse_max 0.5"),
        # A run stopped at evaluate's own gate: evaluate is stale, its metrics are this run's (SOP rule 2).
        ({"stale": ["evaluate"], "pr_metrics": {"rmse": 0.6431}, "rmse_max": 0.62}, BLOCK,
         "benchmark RMSE 0.643 is above evaluate.rmse_max 0.62"),
        ({"stale": ["prepare"], "pr_metrics": None, "not_run": "abc1234"}, BLOCK,
         ("the pipeline has not been run for this commit (abc1234), so there are no current benchmark metrics "
         "(not up to date: prepare)")),
        ({"incomparable": "target changed", "difference": None}, NOT_COMPARABLE, "not compared"),
        ({"incomparable": "benchmark set changed", "drift_status": "warn"}, NOT_COMPARABLE, "not compared"),
        ({"difference": diff("degradation", 0.1)}, BLOCK, "difference is real"),
        ({"drift_status": "warn"}, REVIEW, "drift gate warned"),
        ({"drift_status": None}, REVIEW, "did not run"),
        ({"drift_status": "no_reference"}, REVIEW, "the base has no library batches yet"),
        ({"drift_status": "no_reference", "replaced_base": "ssp460-campaign-1 replaced"}, REVIEW,
         "replaced or removed every library batch of the base (ssp460-campaign-1 replaced)"),
        ({"conflicts": "b-1 in lab-b (2.1) vs a-1 in lab-a (1.6)"}, REVIEW, "two different lab values"),
        ({"base_metrics": None}, REVIEW, "first run"),
        ({"difference": None}, REVIEW, "too few benchmark samples"),
        ({"difference": diff("noise", 0.02), "pr_metrics": {"rmse": 1.02}}, REVIEW, "slightly worse (+2.0%)"),
        ({"difference": diff("noise", -0.02), "pr_metrics": {"rmse": 0.98}}, READY, "no worse (-2.0%"),
        ({}, READY, "improvement is real"),
        ({"drift_status": "no_candidate"}, READY, "improvement is real; no new samples"),  # docs/SOP.md's 🟢
        ({"drift_status": "no_candidate", "filled": "46 pending samples got lab values from p2"}, READY,
         "improvement is real; no new spectra; 46 pending samples got lab values from p2"),  # lab values only
    ],
)
def test_verdict_follows_the_sop_rules_in_order(kwargs, level, words):
    args = {"drift_status": "pass", "pr_metrics": {"rmse": 0.9}, "base_metrics": {"rmse": 1.0},
            "difference": diff("improvement"), "stale": [], "rmse_max": None, **kwargs}
    verdict = decide(**args)
    assert verdict.level == level and words in verdict.reason


def test_size_words_follow_the_stated_threshold():
    def reason(finding, delta):
        return decide(drift_status="pass", pr_metrics={"rmse": 1.0 + delta}, base_metrics={"rmse": 1.0}, stale=[],
                      rmse_max=None, difference=diff(finding, delta)).reason

    assert "clearly worse (+7.5%), but within noise" in reason("noise", 0.075)
    assert "slightly worse (+2.0%), but within noise" in reason("noise", 0.02)
    assert "clearly worse (+10.0%), and the difference is real" in reason("degradation", 0.1)


def test_the_reasons_percentage_is_the_metrics_rmse_change_the_headline_and_table_show():
    """The new-user trial: the reason said +2.0% (the paired bootstrap's RMSEs) beside a table's +7.5%
    (metrics.json). One source, the metrics; the bootstrap only says whether the change is real."""
    from soilci.report.blocks import fmt_pct
    from soilci.report.compare import METRICS, MetricChange

    base, pr = {"rmse": 0.8}, {"rmse": 0.86}
    table = MetricChange(METRICS[0], base["rmse"], pr["rmse"]).relative
    for finding in ("noise", "degradation"):
        verdict = decide(drift_status="pass", pr_metrics=pr, base_metrics=base, stale=[], rmse_max=None,
                         difference=diff(finding, 0.02))
        assert f"clearly worse ({fmt_pct(table)})" in verdict.reason and fmt_pct(table) == "+7.5%"
    improved = decide(drift_status="pass", pr_metrics={"rmse": 0.78}, base_metrics=base, stale=[], rmse_max=None,
                      difference=diff("improvement", -0.1))
    assert "slightly better (-2.5%), and the improvement is real" in improved.reason


def test_an_accepted_drift_names_the_other_batches_only_when_there_are_some():
    """The new-user trial: "the other new samples do not drift" with a single (accepted) batch."""
    args = {"drift_status": "warn", "pr_metrics": {"rmse": 0.9}, "base_metrics": {"rmse": 1.0},
            "difference": diff("improvement"), "stale": [], "rmse_max": None,
            "accepted": 'lab-o (46 rows), accepted by a@b: "new detector"'}
    alone = decide(**args).reason
    assert "there is no other new batch" in alone and "other new samples" not in alone
    both = decide(**args, others="lab-clean (46 rows)").reason
    assert "the other new batches, lab-clean (46 rows), do not drift on their own" in both


def test_a_batch_too_small_to_be_tested_on_its_own_is_named_as_untested_not_as_drifting():
    verdict = decide(drift_status="fail", pr_metrics=None, base_metrics=None, difference=None, stale=[],
                     rmse_max=None, accepted="lab-o (46 rows)", unaccepted="lab-tiny", unaccepted_result="too few rows")
    assert verdict.level == BLOCK
    assert "(lab-tiny) have fewer rows than drift.min_rows, so they could not be tested" in verdict.reason
    assert "differ from the reference set" not in verdict.reason


def test_a_stage_that_stopped_the_run_says_why_in_the_reason():
    failure = "drift (exit 2): data/incoming.parquet: 5 rows, fewer than the 20 the tests need (drift.min_rows)"
    verdict = decide(drift_status=None, pr_metrics=None, base_metrics=None, difference=None,
                     stale=["drift", "train", "evaluate"], rmse_max=None, failure=failure)
    assert verdict.level == BLOCK and verdict.reason.endswith(f"(not up to date: drift, train, evaluate); {failure}")


def test_a_base_whose_batches_were_all_replaced_is_never_called_a_base_without_batches():
    verdict = decide(drift_status="no_reference", pr_metrics={"rmse": 0.9}, base_metrics={"rmse": 1.0},
                     difference=diff("improvement"), stale=[], rmse_max=None,
                     replaced_base="ssp460-campaign-1 replaced")
    assert verdict.level == REVIEW and "no library batches" not in verdict.reason


def test_a_tree_no_run_is_of_says_so_instead_of_another_runs_failure():
    """The new-user trial: branch B's report quoted branch A's failed prepare."""
    verdict = decide(drift_status=None, pr_metrics=None, base_metrics=None, difference=None, stale=["prepare"],
                     rmse_max=None, failure="", not_run="abc1234 with these uncommitted changes")
    assert verdict.level == BLOCK and "prepare (exit 2)" not in verdict.reason
    assert verdict.reason.startswith("the pipeline has not been run for this commit (abc1234 with these uncommitted")
