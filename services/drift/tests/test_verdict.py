"""The verdict: Holm over the family, and JSON without NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soil_drift.two_sample import ks_test
from soil_drift.verdict import adjust, holm, json_number


def test_holm_matches_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2])


def test_adjust_sets_every_tests_holm_p_value():
    rng = np.random.default_rng(1)
    tests = [ks_test(f"x{i}", "column", rng.normal(size=40), rng.normal(shift, size=40))
             for i, shift in enumerate([0.0, 0.2, 1.5])]
    adjust(tests)
    assert [t.p_adjusted for t in tests] == pytest.approx(holm(np.array([t.p_value for t in tests])))
    assert tests[2].drifted(0.025) and not tests[0].drifted(0.025)


def test_json_numbers_are_finite_or_null():
    values = (1, np.float32(0.5), float("nan"), float("inf"), None)
    assert [json_number(v) for v in values] == [1.0, 0.5, None, None, None]
    result = ks_test("x", "column", np.arange(5.0), np.arange(5.0))  # p_adjusted not set yet: NaN
    assert json.loads(json.dumps(result.as_dict(0.025), allow_nan=False))["p_adjusted"] is None
