"""Two-sample tests of one variable (KS, chi-squared, Mann-Whitney), each with its effect sizes."""

from __future__ import annotations

import math

import numpy as np

from soil_drift.verdict import TestResult

PSI_BINS = 10


def psi(reference: np.ndarray, candidate: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cand_counts = np.bincount(np.searchsorted(edges, candidate, side="right"), minlength=len(edges) + 1)
    return psi_counts(ref_counts, cand_counts)


def psi_counts(ref_counts: np.ndarray, cand_counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two histograms over the same bins (or categories)."""
    r = np.maximum(ref_counts / ref_counts.sum(), eps)
    c = np.maximum(cand_counts / cand_counts.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def ecdf_distances(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance from one sort of the pooled values."""
    n_a = len(reference)
    values = np.concatenate([reference, candidate])
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    from_a = order < n_a
    gap = np.abs(np.cumsum(from_a) / n_a - np.cumsum(~from_a) / (len(values) - n_a))
    last = np.append(ordered[1:] != ordered[:-1], True)  # the ECDFs step after the last tie
    gap, distinct = gap[last], ordered[last]
    return float(gap.max()), float(np.sum(np.diff(distinct) * gap[:-1]))


def ks_p_value(statistic: float, reference: np.ndarray, candidate: np.ndarray) -> float:
    """scipy's two-sided two-sample KS p-value: exact up to 10,000 rows a side, else Smirnov's limit."""
    from scipy import stats

    n_a, n_b = len(reference), len(candidate)
    if max(n_a, n_b) <= 10_000:
        return float(stats.ks_2samp(reference, candidate).pvalue)
    en = n_a * n_b / (n_a + n_b)
    return float(stats.kstwo.sf(statistic, np.round(en)))


def numeric_effects(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """KS, Wasserstein (raw and per pooled SD), PSI and both means."""
    ks, wasserstein = ecdf_distances(reference, candidate)
    pooled_sd = float(np.std(np.concatenate([reference, candidate])))
    return {
        "ks": ks,
        "wasserstein": wasserstein,
        "wasserstein_sd": wasserstein / pooled_sd if pooled_sd > 0 else 0.0,
        "psi": psi(reference, candidate),
        "mean_reference": float(np.mean(reference)),
        "mean_candidate": float(np.mean(candidate)),
    }


def ks_test(name: str, kind: str, reference: np.ndarray, candidate: np.ndarray, description: str = "") -> TestResult:
    """Two-sample Kolmogorov-Smirnov with KS, Wasserstein and PSI effect sizes beside the p-value."""
    effects = numeric_effects(reference, candidate)
    stat = effects["ks"]
    p = 1.0 if stat == 0 else ks_p_value(stat, reference, candidate)
    return TestResult(name, kind, "ks", stat, p, effects, description)


def chi2_test(name: str, reference: np.ndarray, candidate: np.ndarray) -> TestResult:
    """Chi-squared test of the 2 x categories table, with PSI over the categories."""
    levels, codes = np.unique(np.concatenate([reference, candidate]), return_inverse=True)
    ref_counts = np.bincount(codes[: len(reference)], minlength=len(levels))
    cand_counts = np.bincount(codes[len(reference):], minlength=len(levels))
    if len(levels) < 2:
        stat, p = 0.0, 1.0
    else:
        from scipy import stats
        res = stats.chi2_contingency(np.vstack([ref_counts, cand_counts]), correction=False)
        stat, p = float(res.statistic), float(res.pvalue)
    n = len(reference) + len(candidate)
    cramers_v = math.sqrt(stat / n) if n else 0.0
    return TestResult(
        name, "column", "chi2", stat, p,
        {"cramers_v": cramers_v, "psi": psi_counts(ref_counts, cand_counts), "levels": float(len(levels))},
    )


def mann_whitney_test(name: str, reference: np.ndarray, candidate: np.ndarray, description: str) -> TestResult:
    """Location test along an artefact direction; statistic is the AUC (0.5: no shift)."""
    from scipy import stats

    res = stats.mannwhitneyu(candidate, reference, alternative="two-sided")
    auc = float(res.statistic) / (len(reference) * len(candidate))
    effects = numeric_effects(reference, candidate)
    effects["auc"] = auc
    return TestResult(name, "component", "mann-whitney", auc, float(res.pvalue), effects, description)
