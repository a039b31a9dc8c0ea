"""The whole-spectrum level at the same spectral shape: how much brighter or darker the candidate is.

A gain or offset of the instrument (lamp, detector, reference panel: a lab's most common fault) moves
every band of every spectrum the same way. Each spectrum's level is the log of its mean over the bands;
soils differ in level far more than a 4% gain (SSP.460: sd 0.23 in log units), but most of that
difference comes with a different shape (organic matter, iron oxides, moisture darken and reshape the
spectrum together). So the level is regressed on the shape, the first principal components of the
standard-normal-variate (SNV) spectra, which a gain or an offset leaves unchanged (Barnes, Dhanoa &
Lister 1989, Appl. Spectrosc. 43:772): the residual's spread is 0.095 on SSP.460 (k = 20, R^2 0.82),
so a gain stands out 2.4x more clearly than in the raw level. Basis and regression are fitted on the
pooled rows without knowing which file a row came from, so the rank test on the residuals keeps its
level exactly under "no drift" (as the other spectral features, see spectral.py).
"""

from __future__ import annotations

import math

import numpy as np

from soil_drift.spectral import CHUNK_ROWS, PCA_FIT_ROWS, SEED, _pooled_rows, fit_basis
from soil_drift.two_sample import mann_whitney_test
from soil_drift.verdict import TestResult

NAME = "spectrum level"
Z95 = 1.959963984540054


def snv(block: np.ndarray) -> np.ndarray:
    """Each row centred on its own mean and scaled by its own SD (rows x bands -> rows x bands, float64)."""
    block = block.astype(np.float64)
    block -= block.mean(1, keepdims=True)
    sd = block.std(1, keepdims=True)
    return np.divide(block, sd, out=np.zeros_like(block), where=sd > 0)


def _shape_and_level(matrix: np.ndarray, mean: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape scores (rows x k) and log level (rows) in chunks, never a float64 copy of the whole matrix."""
    scores, level = np.empty((len(matrix), components.shape[1])), np.empty(len(matrix))
    for start in range(0, len(matrix), CHUNK_ROWS):
        block = matrix[start:start + CHUNK_ROWS]
        level[start:start + len(block)] = np.log(block.mean(1, dtype=np.float64))
        scores[start:start + len(block)] = (snv(block) - mean) @ components
    return scores, level


def level_test(reference: np.ndarray, candidate: np.ndarray, n_components: int) -> TestResult | None:
    """Mann-Whitney on the shape-adjusted log level; the effect says how much brighter the candidate is.

    Args:
        reference, candidate: rows x bands spectra on a positive scale (reflectance, absorbance).
        n_components: SNV shape components regressed out (the gate's own component count).

    Returns:
        The test (``effect``: ``level_change`` = exp(mean residual difference) - 1 with its 95% CI
        ``level_change_low``/``_high`` from Welch's standard error, and ``raw_level_change`` = the ratio of
        the mean levels - 1), or None when a spectrum's mean is not positive (derivatives, centred data):
        a level has no meaning there.
    """
    if min(reference.mean(1).min(), candidate.mean(1).min()) <= 0:
        return None
    n = len(reference) + len(candidate)
    index = (np.sort(np.random.default_rng(SEED).choice(n, PCA_FIT_ROWS, replace=False)) if n > PCA_FIT_ROWS
             else np.arange(n))
    shapes = snv(_pooled_rows((reference, candidate), index))
    basis = fit_basis(shapes, shapes[:0], n_components)
    s_ref, l_ref = _shape_and_level(reference, basis.mean, basis.components)
    s_cand, l_cand = _shape_and_level(candidate, basis.mean, basis.components)
    design = np.column_stack([np.ones(n), np.vstack([s_ref, s_cand])])
    level = np.concatenate([l_ref, l_cand])
    coef, *_ = np.linalg.lstsq(design, level, rcond=None)
    residual = level - design @ coef
    r_ref, r_cand = residual[:len(reference)], residual[len(reference):]
    test = mann_whitney_test(
        NAME, r_ref, r_cand,
        "each spectrum's log mean over the bands, at the same spectral shape (regressed on "
        f"{basis.components.shape[1]} SNV components): a gain or offset of the instrument, or brighter soils",
    )
    diff = float(r_cand.mean() - r_ref.mean())
    se = math.sqrt(r_ref.var(ddof=1) / max(len(r_ref), 1) + r_cand.var(ddof=1) / max(len(r_cand), 1)) \
        if min(len(r_ref), len(r_cand)) > 1 else float("nan")
    test.effect.update({
        "level_change": math.expm1(diff),
        "level_change_low": math.expm1(diff - Z95 * se),
        "level_change_high": math.expm1(diff + Z95 * se),
        "raw_level_change": float(np.exp(l_cand).mean() / np.exp(l_ref).mean() - 1),
    })
    return test

