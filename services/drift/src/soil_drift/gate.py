"""The drift gate: one family of label-blind two-sample tests, Holm-corrected at ``drift.alpha``.

Scalar columns get KS or chi-squared (two_sample.py); spectra get pooled-PCA features (spectral.py)
and Hotelling's T^2 over the component scores (hotelling.py); level.py tests the whole-spectrum level at the
same shape (gain or offset); regions.py names where the spectra moved. Those modules import
scipy.stats (about a second) in the functions that call it, so a gate with nothing to test (no
candidate or no reference rows) never loads it.
"""

from __future__ import annotations

import numpy as np

from soil_drift.config import DriftParams
from soil_drift.hotelling import hotelling_test
from soil_drift.level import level_test
from soil_drift.regions import compare_band_means, locate_regions
from soil_drift.samples import DriftInputs
from soil_drift.spectral import SpectralFeatures, spectral_tests
from soil_drift.two_sample import chi2_test, ks_test
from soil_drift.verdict import (
    NO_CANDIDATE,
    NO_CANDIDATE_SUMMARY,
    NO_REFERENCE,
    NO_REFERENCE_SUMMARY,
    DriftVerdict,
    Region,
    SpectralView,
    TestResult,
    Untested,
    adjust,
    summarise,
)

MIN_SPECTRAL_BANDS = 3


def check_drift(inputs: DriftInputs, params: DriftParams, warn_only: bool = False) -> DriftVerdict:
    """Run every test, correct for their number, and decide pass / warn / fail (no_candidate / no_reference: nothing to compare)."""
    if inputs.n_candidate == 0 or inputs.n_reference == 0:
        status, summary = ((NO_CANDIDATE, NO_CANDIDATE_SUMMARY) if inputs.n_candidate == 0
                           else (NO_REFERENCE, NO_REFERENCE_SUMMARY))
        return DriftVerdict(
            status=status, drift_detected=False, alpha=params.alpha, summary=summary,
            tests=[], regions=[], spectral_info={}, spectra=None, inputs=inputs, params=params,
            warn_only=warn_only,
        )
    tests, untested = _column_tests(inputs)
    spectral = len(inputs.bands) >= MIN_SPECTRAL_BANDS
    features: SpectralFeatures | None = None
    if spectral:
        features = spectral_tests(inputs, params)
        tests += features.tests
        level = (level_test(inputs.reference_spectra, inputs.candidate_spectra, features.basis.components.shape[1])
                 if features.basis.components.shape[1] else None)
        if level is not None:
            tests.append(level)
        if features.basis.components.shape[1]:
            tests.append(hotelling_test(features.reference.scores, features.candidate.scores,
                                        n_tests=len(tests) + 1, alpha=params.alpha))
    adjust(tests)
    detected = any(t.drifted(params.alpha) for t in tests)

    regions: list[Region] = []
    view: SpectralView | None = None
    if features is not None:
        view, raw = compare_band_means(inputs, features.reference, features.candidate)
        if detected:
            regions = locate_regions(inputs, features.basis, raw, params.alpha)

    if not detected:
        status = "pass"
    elif warn_only or params.on_drift == "warn":
        status = "warn"
    else:
        status = "fail"
    verdict = DriftVerdict(
        status=status, drift_detected=detected, alpha=params.alpha, summary="", tests=tests,
        regions=regions, spectral_info=features.info if features is not None else {}, spectra=view,
        inputs=inputs, params=params, warn_only=warn_only, untested=untested,
    )
    verdict.summary = summarise(verdict)
    return verdict


def _column_tests(inputs: DriftInputs) -> tuple[list[TestResult], list[Untested]]:
    """KS for each numeric column, chi-squared for each categorical one; one or two bands count as columns.

    A numeric column is tested on its values present in both files; one with no value in a file is
    returned as untested. Its missing share is not tested: pending lab values are not drift of the soil.
    """
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    untested: list[Untested] = []
    for name, (ref, cand) in inputs.numeric.items():
        reason = _no_value(inputs, ref, cand)
        if reason:
            untested.append(Untested(name, "column", reason))
        else:
            numeric[name] = (ref, cand)
    if len(inputs.bands) < MIN_SPECTRAL_BANDS:
        for j, band in enumerate(inputs.bands):
            numeric[band] = (inputs.reference_spectra[:, j].astype(np.float64),
                             inputs.candidate_spectra[:, j].astype(np.float64))
    tests = [ks_test(name, "column", ref, cand, _present(inputs, name)) for name, (ref, cand) in numeric.items()]
    tests += [chi2_test(name, ref, cand) for name, (ref, cand) in inputs.categorical.items()]
    return tests, untested


def _no_value(inputs: DriftInputs, ref: np.ndarray, cand: np.ndarray) -> str | None:
    """Why a numeric column cannot be tested (no value in a file), or None when it can."""
    if not ref.size and not cand.size:
        return "no value in either file"
    if not cand.size:
        return f"no value in the candidate: all {inputs.n_candidate} rows missing"
    if not ref.size:
        return f"no value in the reference: all {inputs.n_reference} rows missing"
    return None


def _present(inputs: DriftInputs, name: str) -> str:
    """The description of a column tested on part of its rows; empty for a complete column."""
    if name not in inputs.missing:
        return ""
    ref, cand = inputs.numeric[name]
    return (f"tested on the values present: {len(cand)} of {inputs.n_candidate} candidate and "
            f"{len(ref)} of {inputs.n_reference} reference rows")
