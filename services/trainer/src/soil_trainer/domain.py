"""The calibration domain of a fitted model: PCA of its calibration spectra, T2/Q limits, ranges.

Serving flags a spectrum whose preprocessed form lies outside the calibration spectra's principal
subspace (Hotelling T2: far along the components) or off it (Q: large residual), as chemometric
practice does for PLS models.

The subspace has at least as many components as the regression has latent variables. With the
components chosen by explained variance alone (99% of it: 2 components for reflectance spectra,
where albedo dominates), a 9-component PLS predicted from directions the domain counted as
residual; their variance then set a loose Q limit, and a +2% reflectance offset, a one-band
wavelength shift or a gain change moved predictions by 0.5-1 %SOC while 87-95% of the spectra
stayed "in domain" (bench/bench_domain_distortions.py). A domain must describe the model's own
space and dimension: SIMCA/PLS practice computes T2 and DModX (Q) on the model's A components
(Wold, Sjöström & Eriksson 2001, *PLS-regression: a basic tool of chemometrics*, Chemometr. Intell.
Lab. Syst. 58, 109-130; Nomikos & MacGregor 1995, Technometrics 37, 41-59).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from soil_contracts.domain import (
    ApplicabilityDomain,
    ArtefactCheck,
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
DOMAIN_FOLDS = 10  # K-folds whose out-of-fold T2 and Q set the limits
LIMIT_METHOD = (f"conformal: the ceil((n+1)c)-th smallest of {DOMAIN_FOLDS}-fold out-of-fold Hotelling T2 and "
                "Q residuals of the calibration spectra")
ARTEFACT_COMPONENTS = 20  # PPCA components of the artefact checks' covariance (measured: 15-30 all work)
ARTEFACT_CONFIDENCE = 0.98  # two-sided: 1% per tail, the same per-tail rate as T2 and Q at FLAG_CONFIDENCE
MIN_SPAN_SHARE = 0.5  # a spectrum spanning less than this share of the flattest calibration spectrum is implausible
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


def principal_axes(centred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` leading principal axes of (n, p) column-centred data: (k,) score variances (ddof=1)
    and (p, k) orthonormal loadings, from the eigenvectors of the smaller of X X' and X' X.

    Needs only a min(n, p)-square eigenproblem for the top k, several times cheaper than a full SVD.
    """
    n, p = centred.shape
    small = min(n, p)
    gram = centred @ centred.T if n < p else centred.T @ centred
    eigen, vectors = linalg.eigh(gram, subset_by_index=[small - k, small - 1])
    eigen, vectors = np.maximum(eigen[::-1], 0.0), vectors[:, ::-1]
    if n < p:  # vectors are left singular vectors u; loadings v = X' u / s
        vectors = centred.T @ vectors / np.sqrt(np.where(eigen > 0, eigen, 1.0))
    return eigen / (n - 1), vectors


def cross_validated_scores(features: np.ndarray, k: int, folds: int = DOMAIN_FOLDS, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (T2, Q) of each calibration spectrum: what a new spectrum of the same population scores.

    Each of ``folds`` shuffled K-folds is scored on a ``k``-component PCA (mean, loadings, score
    variances) refitted on the other folds, so no spectrum is judged by a model that saw it.

    Args:
        features: (n, n_features) preprocessed calibration spectra; n >= 2 * folds is not required, but
            every training part must hold more than ``k`` spectra.
    Returns:
        Two (n,) arrays: Hotelling T2 and Q residual (squared distance to the k-component subspace).
    Raises:
        DataError: a training part too small for ``k`` components.
    """
    n = len(features)
    t2 = np.empty(n)
    q = np.empty(n)
    for fit_rows, held_out in KFold(min(folds, n), shuffle=True, random_state=seed).split(features):
        part = features[fit_rows]
        if len(part) <= k:
            raise DataError(f"{len(part)} calibration spectra per fold are too few for a {k}-component domain")
        mean = part.mean(axis=0)
        variances, loadings = principal_axes(part - mean, k)
        centred = features[held_out] - mean
        scores = centred @ loadings
        t2[held_out] = np.sum(scores**2 / variances, axis=1)
        q[held_out] = np.maximum(np.sum(centred**2, axis=1) - np.sum(scores**2, axis=1), 0.0)
    return t2, q


def conformal_limit(scores: np.ndarray, confidence: float) -> float:
    """The split-conformal threshold of ``scores`` (n,): the ceil((n + 1) c)-th smallest of them.

    A new score exchangeable with the n out-of-fold scores exceeds it with probability at most 1 - c
    (Vovk, Gammerman & Shafer 2005, *Algorithmic Learning in a Random World*, ch. 2; Laxhammar &
    Falkman 2015, *Inductive conformal anomaly detection*, Annals of Mathematics and AI 74, 67-94).
    With fewer than 1 / (1 - c) - 1 scores no finite threshold has that guarantee, and the largest
    score is used.
    """
    ordered = np.sort(np.asarray(scores, dtype=float))
    rank = int(np.ceil((len(ordered) + 1) * confidence))
    return float(ordered[min(rank, len(ordered)) - 1])


def artefact_spaces(scale: Scale) -> list[tuple[str, str, float]]:
    """(name, space, reference) of the artefact checks for an input scale: a reflectance offset is a
    constant on the reflectance scale; a gain change is a constant in absorbance, log10(reference / R)."""
    if scale is Scale.ABSORBANCE:
        return [("gain", "input", 1.0)]
    reference = 100.0 if scale is Scale.REFLECTANCE_PERCENT else 1.0
    return [("offset", "input", 1.0), ("gain", "absorbance", reference)]


def to_space(spectra: np.ndarray, space: str, reference: float) -> np.ndarray:
    """(n, n_bands) input spectra in an artefact check's space (``ArtefactCheck``)."""
    if space == "input":
        return spectra
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(reference / spectra)


def matched_filter(values: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Weights and offset of the matched filter for a constant added to every value of a row.

    The calibration rows' covariance is modelled as probabilistic PCA (``k`` leading components plus
    an isotropic residual variance, Tipping & Bishop 1999), so its inverse exists for any n and p; the
    filter w = S^-1 d / sqrt(d' S^-1 d), d the all-ones vector, gives z = w'(x - mean), in units of
    its own standard deviation under the calibration distribution (Kay 1998, ch. 7).

    Args:
        values: (n, p) calibration rows in the check's space; k: components (at most n - 2, p - 1).
    Returns:
        (p,) weights and the offset -w'mean.
    """
    n, p = values.shape
    k = max(1, min(k, n - 2, p - 1))
    mean = values.mean(axis=0)
    centred = values - mean
    variances, loadings = principal_axes(centred, k)
    residual = float(np.sum(centred**2) - np.sum((centred @ loadings) ** 2)) / ((n - 1) * (p - k))
    residual = max(residual, 1e-12 * float(variances[0]))
    ones = np.ones(p)
    along = loadings.T @ ones
    inverse_d = loadings @ (along / variances) + (ones - loadings @ along) / residual
    weights = inverse_d / np.sqrt(ones @ inverse_d)
    return weights, float(-weights @ mean)


def fit_artefacts(spectra: np.ndarray, scale: Scale, seed: int = 0) -> list[ArtefactCheck]:
    """Matched-filter checks for a reflectance offset and a gain change (``artefact_spaces``), with
    two-sided conformal limits from ``DOMAIN_FOLDS``-fold out-of-fold statistics of the calibration
    spectra at ``ARTEFACT_CONFIDENCE`` (each tail (1 - confidence) / 2).

    Why: a +1% offset or a gain of 0.7 moved the default model's predictions by 0.5 %SOC but left
    95-99% of the spectra within T2 and Q, whose many directions dilute a change along one known
    direction; a test for that direction alone is the most powerful one (Neyman-Pearson).

    Args:
        spectra: (n, n_bands) calibration spectra on the model's input scale.
    Returns:
        One ``ArtefactCheck`` per space; none for a space where a calibration spectrum is not finite
        (absorbance of a non-positive reflectance).
    """
    tail = (1.0 + ARTEFACT_CONFIDENCE) / 2
    checks = []
    for name, space, reference in artefact_spaces(scale):
        values = to_space(np.asarray(spectra, dtype=float), space, reference)
        if not np.isfinite(values).all():
            continue
        z = np.empty(len(values))
        for fit_rows, held_out in KFold(min(DOMAIN_FOLDS, len(values)), shuffle=True,
                                        random_state=seed).split(values):
            weights, offset = matched_filter(values[fit_rows], ARTEFACT_COMPONENTS)
            z[held_out] = values[held_out] @ weights + offset
        weights, offset = matched_filter(values, ARTEFACT_COMPONENTS)
        checks.append(ArtefactCheck(name=name, space=space, reference=reference, weights=weights.tolist(),
                                    offset=offset, lower=-conformal_limit(-z, tail), upper=conformal_limit(z, tail)))
    return checks


def artefact_scores(domain: ApplicabilityDomain, spectra: np.ndarray) -> np.ndarray:
    """(n, n_checks) matched-filter statistics z of the input spectra; the reference the API mirrors."""
    spectra = np.asarray(spectra, dtype=float)
    columns = [to_space(spectra, c.space, c.reference) @ np.asarray(c.weights) + c.offset for c in domain.artefacts]
    return np.column_stack(columns) if columns else np.empty((len(spectra), 0))


def value_range(spectra: np.ndarray, scale: Scale) -> ValueRange:
    """The input scale's plausible values (the library's rule), the calibration spectra's own range and the
    smallest span a spectrum may have (``MIN_SPAN_SHARE`` of the smallest calibration span).

    Args:
        spectra: (n, n_bands) calibration spectra on the model's input scale.
    """
    low, high = PLAUSIBLE_MAX[scale]
    spans = spectra.max(axis=1) - spectra.min(axis=1)
    return ValueRange(max_low=low, max_high=high, min_low=PLAUSIBLE_MIN,
                      observed_min=float(spectra.min()), observed_max=float(spectra.max()),
                      min_span=MIN_SPAN_SHARE * float(spans.min()))


def latent_dimension(pipeline: Pipeline) -> int:
    """How many latent variables the pipeline's regressor predicts from: PLS's ``n_components``, else 0.

    A ridge or random-forest regressor has no latent subspace; its domain keeps the explained-variance
    rule alone.
    """
    regressor = pipeline.steps[-1][1]
    return int(getattr(regressor, "n_components", 0) or 0)


def domain_components(eigen: np.ndarray, n: int, p: int, latent: int) -> int:
    """Components of the domain PCA: the fewest holding ``EXPLAINED`` of the variance, but at least
    ``latent`` (the regression's latent variables), and at most ``MAX_COMPONENTS``, n - 2 and p.

    Args:
        eigen: (min(n, p),) descending PCA eigenvalues of the preprocessed calibration spectra.
        latent: the regressor's latent dimension (``latent_dimension``).
    """
    share = np.cumsum(eigen) / float(eigen.sum())
    k = max(int(np.searchsorted(share, EXPLAINED) + 1), latent)
    return max(1, min(k, MAX_COMPONENTS, n - 2, p))


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
    seed: int = 0,
    latent: int | None = None,
) -> ApplicabilityDomain:
    """PCA of the calibration spectra in the model's preprocessed space, with its T2/Q limits.

    The PCA keeps at least the regressor's latent variables (``domain_components``), so a change the
    regression responds to moves T2 or Q rather than vanishing into the residual of a smaller subspace.
    The limits are conformal thresholds of out-of-fold scores (``cross_validated_scores``, folds
    shuffled with ``seed``), so a spectrum of the calibration population is flagged with probability
    about 1 - confidence per statistic.

    Args:
        latent: the fewest components to keep; None: the regressor's latent variables
            (``latent_dimension``); 0: the explained-variance rule alone (the rule before schema 2).

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
    k = domain_components(eigen, n, p, latent_dimension(pipeline) if latent is None else latent)
    # Parametric limits (F for T2, Jackson-Mudholkar for Q) assume Gaussian scores and residuals; in a
    # derivative space the residual eigenvalues are so skewed that the Q approximation breaks down (its
    # h0 < 0 made the 99% limit smaller than the 95% one and flagged 90% of the training spectra), so the
    # limits are calibrated on out-of-fold scores instead.
    t2_cv, q_cv = cross_validated_scores(features, k, seed=seed)
    limits = [DomainLimit(confidence=c, t2=conformal_limit(t2_cv, c), q=conformal_limit(q_cv, c))
              for c in CONFIDENCES]
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
        limit_method=LIMIT_METHOD,
        artefacts=fit_artefacts(spectra.to_numpy(dtype=float), scale, seed),
    )


def score_domain(domain: ApplicabilityDomain, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T2, Q) of each row of (n, n_features) preprocessed spectra; the reference the API mirrors."""
    centred = np.asarray(features, dtype=float) - np.asarray(domain.mean)
    components = np.asarray(domain.components)
    scores = centred @ components.T
    t2 = np.sum(scores**2 / np.asarray(domain.score_variances), axis=1)
    q = np.sum(centred**2, axis=1) - np.sum(scores**2, axis=1)
    return t2, np.maximum(q, 0.0)


def out_of_domain(domain: ApplicabilityDomain, spectra: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(n,) True where a spectrum is out of domain: T2 or Q above its ``flag_confidence`` limit, a
    span (max - min over the bands) below ``value_range.min_span``, or an artefact check's z outside
    its limits; the reference the API mirrors.

    Args:
        spectra: (n, n_bands) input spectra on the model's scale; features: the same preprocessed.
    """
    t2, q = score_domain(domain, features)
    limit = domain.limit(domain.flag_confidence)
    flagged = (t2 > limit.t2) | (q > limit.q)
    if domain.value_range.min_span is not None:
        flagged |= np.ptp(np.asarray(spectra, dtype=float), axis=1) < domain.value_range.min_span
    if domain.artefacts:
        z = artefact_scores(domain, spectra)
        lower = np.array([c.lower for c in domain.artefacts])
        upper = np.array([c.upper for c in domain.artefacts])
        flagged |= ~((z >= lower) & (z <= upper)).all(axis=1)  # NaN (no absorbance) is outside
    return flagged


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
