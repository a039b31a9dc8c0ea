"""Spectral features: a label-blind pooled PCA, artefact directions outside it, one projection pass."""

from __future__ import annotations

import numpy as np
import pytest

from soil_drift.spectral import artefact_directions, fit_basis, project, residual_moments


def test_basis_is_orthonormal_ordered_and_label_blind(spectra):
    ref, cand = spectra
    basis = fit_basis(ref, cand, 10)
    k = basis.components.shape[1]
    assert k == 10 and basis.fit_rows == len(ref) + len(cand)
    np.testing.assert_allclose(basis.components.T @ basis.components, np.eye(k), atol=1e-8)
    assert np.all(np.diff(basis.explained) <= 0) and 0 < basis.explained.sum() <= 1
    largest = basis.components[np.abs(basis.components).argmax(0), np.arange(k)]
    assert np.all(largest > 0)  # deterministic signs
    swapped = fit_basis(cand, ref, 10)  # which file is which does not change the features
    np.testing.assert_allclose(np.abs(swapped.components.T @ basis.components), np.eye(k), atol=1e-6)


def test_artefact_directions_are_unit_and_outside_the_components(spectra):
    basis = fit_basis(*spectra, 10)
    directions = artefact_directions(basis)
    assert list(directions) == ["baseline offset", "gain", "wavelength shift"]
    for direction, _ in directions.values():
        assert np.linalg.norm(direction) == pytest.approx(1.0)
        np.testing.assert_allclose(basis.components.T @ direction, 0, atol=1e-9)


def test_projection_splits_each_spectrum_into_scores_and_residual(spectra):
    ref, cand = spectra
    basis = fit_basis(ref, cand, 10)
    directions = np.column_stack([d for d, _ in artefact_directions(basis).values()])
    proj = project(ref, basis, directions)
    centred = ref.astype(np.float64) - basis.mean
    np.testing.assert_allclose(proj.scores, centred @ basis.components, atol=1e-8)
    np.testing.assert_allclose(proj.residual + (proj.scores**2).sum(1), (centred**2).sum(1), rtol=1e-9)
    np.testing.assert_allclose(proj.band_mean, ref.astype(np.float64).mean(0), rtol=1e-9)
    np.testing.assert_allclose(proj.band_var, ref.astype(np.float64).var(0, ddof=1), rtol=1e-6)
    mean, var = residual_moments(ref, basis)
    outside = centred - (centred @ basis.components) @ basis.components.T
    np.testing.assert_allclose(mean, outside.mean(0), atol=1e-9)
    np.testing.assert_allclose(var, outside.var(0, ddof=1), rtol=1e-6, atol=1e-12)
