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
        ({"rmse_max": 0.5}, BLOCK, "above the ceiling"),
        ({"incomparable": "target changed", "rmse_max": 0.5}, BLOCK, "above the ceiling"),
        ({"incomparable": "target changed", "difference": None}, NOT_COMPARABLE, "not compared"),
        ({"incomparable": "benchmark set changed", "drift_status": "warn"}, NOT_COMPARABLE, "not compared"),
        ({"difference": diff("degradation", 0.1)}, BLOCK, "difference is real"),
        ({"drift_status": "warn"}, REVIEW, "drift gate warned"),
        ({"drift_status": None}, REVIEW, "did not run"),
        ({"base_metrics": None}, REVIEW, "first run"),
        ({"difference": None}, REVIEW, "too few benchmark samples"),
        ({"difference": diff("noise", 0.02)}, REVIEW, "slightly worse"),
        ({"difference": diff("noise", -0.02)}, READY, "no worse"),
        ({}, READY, "improvement is real"),
    ],
)
def test_verdict_follows_the_sop_rules_in_order(kwargs, level, words):
    args = {"drift_status": "pass", "pr_metrics": {"rmse": 0.9}, "base_metrics": {"rmse": 1.0},
            "difference": diff("improvement"), "stale": [], "rmse_max": None, **kwargs}
    verdict = decide(**args)
    assert verdict.level == level and words in verdict.reason


def test_size_words_follow_the_stated_threshold():
    args = {"drift_status": "pass", "pr_metrics": {"rmse": 1.075}, "base_metrics": {"rmse": 1.0}, "stale": [],
            "rmse_max": None}
    assert "clearly worse (+7.5%), but within noise" in decide(**args, difference=diff("noise", 0.075)).reason
    assert "slightly worse (+2.0%), but within noise" in decide(**args, difference=diff("noise", 0.02)).reason
    assert "clearly worse (+10.0%), and the difference is real" in decide(
        **args, difference=diff("degradation", 0.1)).reason
