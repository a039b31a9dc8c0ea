"""Hotelling's T^2 on component scores: an exact permutation p-value, the F approximation for large inputs."""

from __future__ import annotations

import numpy as np

from soil_drift.hotelling import PERMUTATION_MAX_ROWS, hotelling_test


def test_permutation_test_keeps_its_level_and_finds_a_mean_shift():
    rng = np.random.default_rng(7)
    ref, cand = rng.normal(size=(120, 5)), rng.normal(size=(40, 5))
    same = hotelling_test(ref, cand, n_tests=20, alpha=0.025)
    assert same.test.startswith("hotelling-t2 (permutation") and same.p_value > 0.01
    shifted = hotelling_test(ref, cand + 0.6, n_tests=20, alpha=0.025)
    assert shifted.p_value < 0.025 / 20 and shifted.effect["components"] == 5.0
    assert shifted.effect["mahalanobis"] > same.effect["mahalanobis"]
    assert hotelling_test(ref, cand + 0.6, n_tests=20, alpha=0.025).p_value == shifted.p_value  # seeded


def test_large_inputs_use_the_f_approximation():
    rng = np.random.default_rng(8)
    ref, cand = rng.normal(size=(PERMUTATION_MAX_ROWS, 3)), rng.normal(size=(200, 3))
    result = hotelling_test(ref, cand, n_tests=10, alpha=0.025)
    assert result.test == "hotelling-t2 (F)" and 0 < result.p_value <= 1
    assert hotelling_test(ref, cand + 0.5, n_tests=10, alpha=0.025).p_value < 1e-6
