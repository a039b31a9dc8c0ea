"""Hotelling's T^2 on component scores: an exact permutation p-value, the F approximation for large inputs."""

from __future__ import annotations

import numpy as np

from soil_drift.hotelling import MAX_PERMUTATIONS, PERMUTATION_MAX_ROWS, hotelling_test, permutations_needed


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


def test_permutation_count_is_capped_and_a_tiny_alpha_uses_the_f_approximation():
    """alpha 1e-300 once asked for ceil(20 * n_tests / alpha) = 10^302 permutations and hung the gate."""
    assert permutations_needed(27, 0.025) == 21_600  # the default family: permuted as before
    assert permutations_needed(27, 1e-300) > MAX_PERMUTATIONS  # float overflow counts as too many
    rng = np.random.default_rng(9)
    ref, cand = rng.normal(size=(120, 5)), rng.normal(size=(40, 5))
    for n_tests, alpha in ((27, 1e-300), (27, 1e-4), (MAX_PERMUTATIONS, 0.025)):
        shifted = hotelling_test(ref, cand + 0.6, n_tests=n_tests, alpha=alpha)
        assert shifted.test.startswith("hotelling-t2 (F: a permutation p-value at alpha/")
        assert f"more than {MAX_PERMUTATIONS}" in shifted.test and shifted.p_value < 1e-6
    within = hotelling_test(ref, cand, n_tests=27, alpha=20 * 27 / (MAX_PERMUTATIONS - 10))  # stops early: no shift
    assert within.test.startswith("hotelling-t2 (permutation")
