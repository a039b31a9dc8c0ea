"""The paired bootstrap of the RMSE difference, and each metric's change."""

from __future__ import annotations

import numpy as np
import pytest

from soilci.report.compare import bootstrap_rmse_difference, metric_changes
from soilci.report.inputs import parse_predictions


def test_bootstrap_interval_excludes_zero_only_for_a_real_difference(models):
    weak, good = parse_predictions(models["weak"][1].to_csv(index=False), "weak"), \
        parse_predictions(models["good"][1].to_csv(index=False), "good")
    better = bootstrap_rmse_difference(weak, good)
    assert better.n_pairs == len(good) and better.high < 0 and better.finding == "improvement"
    assert better.low < better.delta < better.high
    # The same comparison twice gives the same interval (fixed seed).
    assert bootstrap_rmse_difference(weak, good) == better
    # Tiny noise on the same predictions is not a real change.
    rng = np.random.default_rng(1)
    jitter = good.assign(error=good["error"] + rng.normal(0, 1e-3, len(good)))
    assert bootstrap_rmse_difference(good, jitter).finding == "noise"
    # Pairs are joined on sample_id, whatever the row order.
    assert bootstrap_rmse_difference(weak, good.iloc[::-1]).delta == pytest.approx(better.delta)


def test_metric_changes_judge_each_metric_by_its_own_direction(models):
    weak, good = models["weak"][0], models["good"][0]
    changes = {c.spec.key: c for c in metric_changes(weak, good)}
    assert list(changes) == ["rmse", "r2", "rpd", "rpiq", "mae", "bias"]
    assert changes["rmse"].mark == changes["rpd"].mark == changes["rpiq"].mark == "better"
    assert changes["rmse"].relative == pytest.approx((good["rmse"] - weak["rmse"]) / weak["rmse"])
    # Bias is better closer to zero, whatever its sign, and has no relative change.
    assert changes["bias"].mark == ("better" if abs(good["bias"]) < abs(weak["bias"]) else "worse")
    assert changes["bias"].relative is None
    assert {c.mark for c in metric_changes(good, good)} == {"same"}
    missing = metric_changes(weak, {})
    assert {c.mark for c in missing} == {""} and all(c.delta is None for c in missing)


def test_rpd_classes_are_chang_et_al_2001s():
    from soilci.report.compare import rpd_class

    assert [rpd_class(x) for x in (2.5, 2.0, 1.4, 1.39)] == ["accurate", "fair", "fair", "poor"]


def test_serving_metrics_show_for_both_sides_coverage_judged_by_its_distance_to_nominal(models):
    weak, good = models["weak"][0], models["good"][0]
    base = {**weak, "interval_coverage": 0.80, "out_of_domain_rate": 0.02}
    pr = {**good, "interval_coverage": 0.93, "out_of_domain_rate": 0.05}

    changes = {c.spec.key: c for c in metric_changes(base, pr)}

    assert list(changes)[-2:] == ["interval_coverage", "out_of_domain_rate"]
    assert changes["interval_coverage"].mark == "better"  # 3 points from 90% instead of 10
    assert changes["interval_coverage"].relative is None
    assert changes["out_of_domain_rate"].mark == "worse"
    assert metric_changes({**base, "interval_coverage": 0.97}, pr)[-2].mark == "better"  # over-covering misses too
