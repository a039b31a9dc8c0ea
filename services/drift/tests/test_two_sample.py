"""One-variable two-sample tests: statistics and effect sizes match their textbook definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from soil_drift.two_sample import chi2_test, ecdf_distances, ks_p_value, ks_test, mann_whitney_test, psi


def test_ecdf_distances_and_ks_p_value_match_scipy(reference, incoming):
    band = [c for c in reference.columns if c.startswith(("wl_", "wn_"))][400]
    a, b = reference[band].to_numpy(), incoming[band].to_numpy()
    d, w = ecdf_distances(a, b)
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic) and w == pytest.approx(stats.wasserstein_distance(a, b))
    assert ks_p_value(d, a, b) == pytest.approx(ref.pvalue)


def test_ks_test_reports_its_effect_sizes(reference, incoming):
    a, b = reference["SOC_target"].to_numpy(), incoming["SOC_target"].to_numpy()
    result = ks_test("SOC_target", "column", a, b)
    assert result.test == "ks" and result.statistic == result.effect["ks"]
    assert result.effect["mean_reference"] == pytest.approx(a.mean())
    assert ks_test("same", "column", a, a).p_value == 1.0 and psi(a, a) == 0.0


def test_chi2_test_matches_scipy_and_reports_cramers_v():
    ref = np.array(["A"] * 30 + ["B"] * 10, dtype=object)
    cand = np.array(["A"] * 10 + ["B"] * 20 + ["C"] * 5, dtype=object)
    result = chi2_test("lab", ref, cand)
    expected = stats.chi2_contingency([[30, 10, 0], [10, 20, 5]], correction=False)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.effect["cramers_v"] == pytest.approx((expected.statistic / 75) ** 0.5)
    assert result.effect["levels"] == 3.0 and chi2_test("one", ref[:5], ref[:5]).p_value == 1.0


def test_mann_whitney_statistic_is_the_auc():
    ref, cand = np.arange(20.0), np.arange(20.0) + 100
    result = mann_whitney_test("gain", ref, cand, "every band multiplied by a factor")
    assert result.kind == "component" and result.statistic == 1.0 and result.p_value < 1e-6
