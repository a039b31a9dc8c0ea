"""The whole-spectrum level at the same shape: a gain is named with its size, honest data are not."""

from __future__ import annotations

import numpy as np
import pytest

from soil_drift.level import level_test
from soil_drift.verdict import describe_level


def test_an_8_percent_gain_is_found_and_sized(spectra):
    ref, cand = spectra
    test = level_test(ref, cand * np.float32(1.08), 20)
    honest = level_test(ref, cand, 20)
    assert test.p_value < 1e-4 and honest.p_value > 0.05  # prepare's fold 3: no gain, not flagged
    assert test.effect["level_change_low"] < 0.08 < test.effect["level_change_high"]
    assert describe_level(test).startswith("spectra are ") and "% higher (brighter, in reflectance)" in describe_level(test)


def test_the_level_is_label_blind_and_needs_a_positive_scale(spectra):
    ref, cand = spectra
    a, b = level_test(ref, cand, 20), level_test(cand, ref, 20)
    assert a.p_value == pytest.approx(b.p_value)  # which file is which does not change the test
    assert a.effect["level_change"] == pytest.approx(-b.effect["level_change"] / (1 + b.effect["level_change"]))
    assert level_test(ref - ref.mean(), cand - ref.mean(), 20) is None  # centred data have no level
