"""The calibration domain of a fitted model: PCA of its calibration spectra, T2/Q limits, ranges.

Serving flags a spectrum whose preprocessed form lies outside the calibration spectra's principal
subspace (Hotelling T2: far along the components) or off it (Q: large residual), as chemometric
practice does for PLS models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.pipeline import Pipeline

from soil_contracts.domain import (
    ApplicabilityDomain,
    CalibrationSample,
    DomainLimit,
    IntervalWidth,
    ValueRange,
)
from soil_contracts.library import PLAUSIBLE_MAX, PLAUSIBLE_MIN, Scale
from soil_trainer.errors import DataError

CONFIDENCES = (0.95, 0.99)  # limits stored; in_domain uses FLAG_CONFIDENCE
FLAG_CONFIDENCE = 0.99
EXPLAINED = 0.99  # components kept: the fewest holding this share of the calibration variance ...
MAX_COMPONENTS = 20  # ... but no more than this
# Spectra kept for serving's live drift check: enough for the gate's power at a few hundred window
# rows (its PCA subsamples at 5,000), small enough to load in milliseconds (430 bands: ~2 MB of JSON).
CALIBRATION_ROWS = 500
CALIBRATION_DIGITS = 6  # significant digits kept; 1e-6 relative is far below instrument noise


def preprocess(pipeline: Pipeline, spectra: pd.DataFrame | np.ndarray) -> np.ndarray:
    """(n, n_bands) spectra -> (n, n_features): the fitted pipeline's steps before the regressor."""
    values = spectra.to_numpy(dtype=float) if isinstance(spectra, pd.DataFrame) else np.asarray(spectra, float)
    for _, step in pipeline.steps[:-1]:
        if step is not None and step != "passthrough":
            values = step.transform(values)
    return np.asarray(values, dtype=float)


def t2_limit(k: int, n: int, confidence: float) -> float:
    """Hotelling T2 limit for a new observation scored on a k-component model of n samples.

    ``k (n-1)(n+1) / (n (n-k)) F(confidence; k, n-k)``: Hotelling (1931); the form for a future
    observation is Tracy, Young & Mason (1992), *J. Quality Technology* 24(2), 88-95.
    """
    if n <= k:
        raise DataError(f"{n} calibration spectra are too few for a {k}-component domain")
    return float(k * (n - 1) * (n + 1) / (n * (n - k)) * stats.f.ppf(confidence, k, n - k))


def q_limit(residual_eigenvalues: np.ndarray, confidence: float) -> float:
    """Q (squared prediction error) limit from the eigenvalues of the discarded components.

    Jackson, J. E. & Mudholkar, G. S. (1979), *Control procedures for residuals associated with
    principal component analysis*, Technometrics 21(3), 341-349: with theta_i = sum(lambda^i) and
    h0 = 1 - 2 theta1 theta3 / (3 theta2^2),
    ``Q = theta1 (z sqrt(2 theta2 h0^2) / theta1 + 1 + theta2 h0 (h0 - 1) / theta1^2) ^ (1 / h0)``.
    """
    lam = np.asarray(residual_eigenvalues, dtype=float)
    lam = lam[lam > 0]
    if lam.size == 0:
        return 0.0
    theta1, theta2, theta3 = (float(np.sum(lam**i)) for i in (1, 2, 3))
    h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2**2)
    z = float(stats.norm.ppf(confidence))
    base = z * np.sqrt(2.0 * theta2 * h0**2) / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / theta1**2
    return float(theta1 * base ** (1.0 / h0))


def value_range(spectra: np.ndarray, scale: Scale) -> ValueRange:
    """The input scale's plausible values (the library's rule) and the calibration spectra's own range."""
    low, high = PLAUSIBLE_MAX[scale]
    return ValueRange(max_low=low, max_high=high, min_low=PLAUSIBLE_MIN,
                      observed_min=float(spectra.min()), observed_max=float(spectra.max()))


def fit_domain(
    pipeline: Pipeline,
    spectra: pd.DataFrame,
    target: np.ndarray,
    *,
    target_name: str,
    target_unit: str,
    scale: Scale,
    intervals: list[IntervalWidth],
    interval_method: str,
) -> ApplicabilityDomain:
    """PCA of the calibration spectra in the model's preprocessed space, with its T2/Q limits.

    Raises:
        DataError: too few spectra, or a calibration set with no variance after preprocessing.
    """
    features = preprocess(pipeline, spectra)
    n, p = features.shape
    if n < 3:
        raise DataError(f"{n} calibration spectra are too few for an applicability domain")
    mean = features.mean(axis=0)
    _, s, vt = np.linalg.svd(features - mean, full_matrices=False)
    eigen = s**2 / (n - 1)
    total = float(eigen.sum())
    if total <= 0:
        raise DataError("the preprocessed calibration spectra have no variance")
    share = np.cumsum(eigen) / total
    k = int(np.searchsorted(share, EXPLAINED) + 1)
    k = max(1, min(k, MAX_COMPONENTS, n - 2, p))
    limits = [DomainLimit(confidence=c, t2=t2_limit(k, n, c), q=q_limit(eigen[k:], c)) for c in CONFIDENCES]
    return ApplicabilityDomain(
        features=[name for name, _ in pipeline.steps[:-1]],
        n_samples=n,
        n_features=p,
        mean=mean.tolist(),
        components=vt[:k].tolist(),
        score_variances=eigen[:k].tolist(),
        explained_variance=min(1.0, float(share[k - 1])),
        limits=limits,
        flag_confidence=FLAG_CONFIDENCE,
        target=target_name,
        target_unit=target_unit,
        target_min=float(np.min(target)),
        target_max=float(np.max(target)),
        scale=scale,
        value_range=value_range(spectra.to_numpy(dtype=float), scale),
        intervals=intervals,
        default_coverage=intervals[0].coverage,
        interval_method=interval_method,
    )


def score_domain(domain: ApplicabilityDomain, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T2, Q) of each row of (n, n_features) preprocessed spectra; the reference the API mirrors."""
    centred = np.asarray(features, dtype=float) - np.asarray(domain.mean)
    components = np.asarray(domain.components)
    scores = centred @ components.T
    t2 = np.sum(scores**2 / np.asarray(domain.score_variances), axis=1)
    q = np.sum(centred**2, axis=1) - np.sum(scores**2, axis=1)
    return t2, np.maximum(q, 0.0)


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (zeros stay zero), so JSON holds short numbers."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values))))
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.round(values * scale) / scale


def calibration_sample(spectra: pd.DataFrame, scale: Scale, seed: int,
                       max_rows: int = CALIBRATION_ROWS) -> CalibrationSample:
    """The raw calibration spectra serving's live drift check compares its window with.

    Args:
        spectra: (n, n_bands) training spectra in the model's band order, on its input scale.
        seed: a draw of ``max_rows`` of them, in their original order, when there are more.
    """
    values = spectra.to_numpy(dtype=np.float64)
    n = len(values)
    keep = np.arange(n)
    if n > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    return CalibrationSample(
        scale=scale, bands=[str(c) for c in spectra.columns],
        rows=round_significant(values[keep], CALIBRATION_DIGITS).tolist(),
        n_source_rows=n, max_rows=max_rows, seed=seed, significant_digits=CALIBRATION_DIGITS,
    )
