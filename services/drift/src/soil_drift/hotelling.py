"""Hotelling's T^2 on all component scores at once: exact by permutation for small inputs, else F.

The permutation test is used when it is affordable: at most PERMUTATION_MAX_ROWS rows and at most
MAX_PERMUTATIONS permutations to resolve Holm's smallest threshold ``alpha / n_tests`` (20 expected
exceedances there). A smaller ``alpha`` or a longer family needs more permutations than that (a tiny
alpha once asked for 10^302 and hung the gate), so the test then uses its F approximation, as it
does for many rows, and says so in its name.
"""

from __future__ import annotations

import math

import numpy as np

from soil_drift.spectral import SEED
from soil_drift.verdict import TestResult

PERMUTATION_MAX_ROWS = 2000  # above this the Hotelling test uses its F approximation
MIN_PERMUTATIONS = 1999
# Above this the permutation p-value would cost more than the rest of the gate: F instead. It resolves
# a smallest Holm threshold of 20 / 200,000 = 1e-4 (e.g. alpha 0.0027 over the default 27 tests, or
# alpha 0.025 over 250 tests); its finest p-value is 1 / 200,001 = 5e-6.
MAX_PERMUTATIONS = 200_000
SEQUENTIAL_HITS = 20  # stop permuting once this many permutation statistics reach the observed one


def hotelling_test(ref_scores: np.ndarray, cand_scores: np.ndarray, n_tests: int, alpha: float) -> TestResult:
    """Mean shift across all components at once: Hotelling's T^2 with the pooled (total) covariance.

    Whitening by the total covariance makes the statistic a function of the pooled scores and the
    labels only, so a permutation of the labels gives its exact null distribution. ``n_tests`` and
    ``alpha`` set how many permutations resolve a p-value of Holm's smallest threshold
    (``permutations_needed``); more than MAX_PERMUTATIONS, or more than PERMUTATION_MAX_ROWS rows,
    and the F approximation of the statistic (via Pillai's trace) is used instead.

    Args:
        ref_scores, cand_scores: component scores, shape (rows, components), same components.
        n_tests: the size of the Holm family the p-value joins (>= 1).
        alpha: the family-wise level (> 0).
    """
    scores = np.vstack([ref_scores, cand_scores])
    n, n_a, n_b = len(scores), len(ref_scores), len(cand_scores)
    scores = scores - scores.mean(0)
    eigval, eigvec = np.linalg.eigh(scores.T @ scores / n)
    keep = eigval > 1e-12 * eigval.max()
    white = scores @ (eigvec[:, keep] / np.sqrt(eigval[keep]))
    k = white.shape[1]
    small, in_small = (n_a, slice(0, n_a)) if n_a <= n_b else (n_b, slice(n_a, n))
    observed = n / (n_a * n_b) * float(np.sum(white[in_small].sum(0) ** 2))
    distance = math.sqrt(observed * n / (n_a * n_b))
    n_perm = permutations_needed(n_tests, alpha)
    if n <= PERMUTATION_MAX_ROWS and n_perm <= MAX_PERMUTATIONS:
        p, used = sequential_permutation_p(white, small, observed, n_perm, n / (n_a * n_b))
        test = f"hotelling-t2 (permutation, {used} of at most {n_perm})"
    else:
        pillai = min(observed / n, 1 - 1e-15)
        f_stat = pillai / (1 - pillai) * (n - k - 1) / k
        from scipy import stats
        p = float(stats.f.sf(f_stat, k, n - k - 1))
        test = "hotelling-t2 (F)" if n > PERMUTATION_MAX_ROWS else (
            f"hotelling-t2 (F: a permutation p-value at alpha/{n_tests} needs {n_perm:.3g} permutations, "
            f"more than {MAX_PERMUTATIONS})")
    return TestResult(
        "all components (Hotelling T2)", "component", test, observed, p,
        {"mahalanobis": distance, "components": float(k)},
        "mean shift across the tested components together",
    )


def permutations_needed(n_tests: int, alpha: float) -> int:
    """Permutations that resolve Holm's smallest threshold ``alpha / n_tests`` with 20 expected
    exceedances there (at least MIN_PERMUTATIONS); a float overflow counts as more than any cap.

    Source: Besag & Clifford (1991), Biometrika 78(2):301-304, on sequential Monte Carlo p-values.
    """
    need = 20 * n_tests / alpha
    return max(MIN_PERMUTATIONS, math.ceil(need)) if math.isfinite(need) else MAX_PERMUTATIONS + 1


def sequential_permutation_p(
    white: np.ndarray, small: int, observed: float, n_perm: int, scale: float, enough: int = SEQUENTIAL_HITS,
) -> tuple[float, int]:
    """Permutation p-value of Hotelling's statistic, stopped early once it is clearly large.

    Besag and Clifford's sequential rule: stop at the ``enough``-th permutation statistic at or
    above the observed one (p = enough / permutations drawn), else use all ``n_perm``
    (p = (1 + exceedances) / (1 + n_perm)). Both are exact p-values.

    Returns:
        The p-value and the number of permutations drawn.
    """
    n = len(white)
    rng = np.random.default_rng(SEED)
    batch = max(1, min(n_perm, 200_000 // n))
    base = np.tile(np.arange(n), (batch, 1))
    exceed, done = 0, 0
    while done < n_perm:
        m = min(batch, n_perm - done)
        picks = rng.permuted(base[:m], axis=1)[:, :small]
        # The smaller group's score sums as one matrix product (a 0/1 row per permutation): 2-3x
        # faster than gathering the picked rows, and the same permutations, so the same p-value.
        indicator = np.zeros((m, n))
        np.put_along_axis(indicator, picks, 1.0, axis=1)
        sums = indicator @ white
        perm_stats = scale * np.einsum("ij,ij->i", sums, sums)
        hits = np.cumsum(perm_stats >= observed * (1 - 1e-12))
        if exceed + hits[-1] >= enough:
            stop = int(np.searchsorted(hits, enough - exceed)) + 1
            return enough / (done + stop), done + stop
        exceed += int(hits[-1])
        done += m
    return (1 + exceed) / (1 + n_perm), n_perm
