"""Label-blind spectral features: pooled-PCA scores, the residual, and the instrument-artefact directions.

Every feature is computed from the pooled rows without knowing which file a row came from (PCA basis,
mean spectrum, artefact directions). Under "no drift" the rows are exchangeable, so the rank tests on
those features keep their nominal level exactly, however correlated the bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from soil_drift.config import DriftParams
from soil_drift.samples import DriftInputs
from soil_drift.two_sample import ks_test, mann_whitney_test
from soil_drift.verdict import TestResult

PCA_FIT_ROWS = 5000  # a label-blind random subsample fits the basis for larger inputs
CHUNK_ROWS = 8192  # rows converted to float64 at a time
SEED = 20250501


@dataclass
class SpectralBasis:
    """The pooled PCA fit every spectral feature is computed on."""

    mean: np.ndarray  # pooled mean spectrum (float64)
    components: np.ndarray  # bands x k, orthonormal
    explained: np.ndarray  # explained-variance ratio of each component in the fit rows
    fit_rows: int


@dataclass
class Projection:
    """One file's spectra seen through the basis."""

    scores: np.ndarray  # rows x k
    residual: np.ndarray  # squared distance to the component subspace
    probes: np.ndarray  # rows x artefact directions
    band_mean: np.ndarray  # per-band mean and variance of the rows (for the plot and the regions)
    band_var: np.ndarray


@dataclass
class SpectralFeatures:
    """The spectral tests, what the verdict reports about them, and the fit and projections behind them."""

    tests: list[TestResult]
    info: dict[str, Any]
    basis: SpectralBasis
    reference: Projection
    candidate: Projection


def _pooled_rows(matrices: tuple[np.ndarray, ...], index: np.ndarray) -> np.ndarray:
    """Pooled rows ``index`` (sorted) of the stacked matrices, as float64, without stacking them all."""
    out, offset = [], 0
    for m in matrices:
        local = index[(index >= offset) & (index < offset + len(m))] - offset
        out.append(m[local].astype(np.float64))
        offset += len(m)
    return np.vstack(out)


def fit_basis(reference: np.ndarray, candidate: np.ndarray, n_components: int) -> SpectralBasis:
    """PCA of the pooled spectra, label-blind: fitted on all rows or a uniform random subsample."""
    n = len(reference) + len(candidate)
    mean = (reference.sum(0, dtype=np.float64) + candidate.sum(0, dtype=np.float64)) / n
    if n > PCA_FIT_ROWS:
        index = np.sort(np.random.default_rng(SEED).choice(n, PCA_FIT_ROWS, replace=False))
    else:
        index = np.arange(n)
    fit = _pooled_rows((reference, candidate), index) - mean
    total = float(np.einsum("ij,ij->", fit, fit))
    # Eigen-decompose the smaller of the two Gram matrices, top components only.
    small_side = fit @ fit.T if fit.shape[0] <= fit.shape[1] else fit.T @ fit
    size = small_side.shape[0]
    top = min(n_components, size)
    variances, vectors = linalg.eigh(small_side, subset_by_index=[size - top, size - 1])
    variances, vectors = np.clip(variances[::-1], 0, None), vectors[:, ::-1]
    if fit.shape[0] <= fit.shape[1]:  # row-space eigenvectors -> band loadings
        with np.errstate(divide="ignore", invalid="ignore"):
            vectors = fit.T @ vectors / np.sqrt(variances)
    keep = int(np.sum(variances > 1e-12 * max(total, 1e-300)))
    vectors = vectors[:, :keep]
    # Deterministic signs: the largest loading of each component is positive.
    signs = np.sign(vectors[np.abs(vectors).argmax(0), np.arange(keep)])
    vectors = vectors * np.where(signs == 0, 1, signs)
    explained = variances[:keep] / total if total > 0 else np.zeros(keep)
    return SpectralBasis(mean, vectors, explained, len(index))


def artefact_directions(basis: SpectralBasis) -> dict[str, tuple[np.ndarray, str]]:
    """Unit directions an instrument change moves spectra along, outside the component subspace."""
    raw = {
        "baseline offset": (np.ones_like(basis.mean),
                            "a constant added to every band (detector offset, dark current)"),
        "gain": (basis.mean,
                 "every band multiplied by a factor (multiplicative scatter, lamp or gain change)"),
        "wavelength shift": (np.gradient(basis.mean),
                             "the band axis displaced (wavelength calibration)"),
    }
    out = {}
    for name, (direction, text) in raw.items():
        norm = np.linalg.norm(direction)
        if norm == 0:
            continue
        resid = direction - basis.components @ (basis.components.T @ direction)
        if np.linalg.norm(resid) < 1e-6 * norm:
            continue  # inside the subspace: the component tests cover it
        out[name] = (resid / np.linalg.norm(resid), text)
    return out


def project(matrix: np.ndarray, basis: SpectralBasis, directions: np.ndarray) -> Projection:
    """One chunked pass: component scores, residual distance, artefact scores and band moments."""
    k = basis.components.shape[1]
    n, p = matrix.shape
    scores = np.empty((n, k))
    residual = np.empty(n)
    probes = np.empty((n, directions.shape[1]))
    total, total_sq = np.zeros(p), np.zeros(p)
    both = np.hstack([basis.components, directions])
    for start in range(0, n, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n)
        centred = matrix[start:stop].astype(np.float64)
        centred -= basis.mean
        projected = centred @ both
        s = projected[:, :k]
        scores[start:stop] = s
        probes[start:stop] = projected[:, k:]
        squares = centred * centred
        residual[start:stop] = squares.sum(1) - np.einsum("ij,ij->i", s, s)
        total += centred.sum(0)
        total_sq += squares.sum(0)
    mean = total / n
    var = np.clip(total_sq / n - mean**2, 0, None) * n / max(n - 1, 1)
    return Projection(scores, np.clip(residual, 0, None), probes, mean + basis.mean, var)


def residual_moments(matrix: np.ndarray, basis: SpectralBasis) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and variance of the part of each spectrum outside the component subspace."""
    n, p = matrix.shape
    total, total_sq = np.zeros(p), np.zeros(p)
    for start in range(0, n, CHUNK_ROWS):
        block = matrix[start:start + CHUNK_ROWS].astype(np.float64)
        block -= basis.mean
        block -= (block @ basis.components) @ basis.components.T
        total += block.sum(0)
        total_sq += np.einsum("ij,ij->j", block, block)
    mean = total / n
    return mean, np.clip(total_sq / n - mean**2, 0, None) * n / max(n - 1, 1)


def spectral_tests(inputs: DriftInputs, params: DriftParams) -> SpectralFeatures:
    """KS on each component score and on the residual, Mann-Whitney along each artefact direction."""
    ref, cand = inputs.reference_spectra, inputs.candidate_spectra
    n = len(ref) + len(cand)
    k = min(params.n_components, ref.shape[1] - 1, max(1, n // 4))
    basis = fit_basis(ref, cand, k)
    tests: list[TestResult] = []
    info: dict[str, Any] = {
        "bands": len(inputs.bands), "unit": inputs.band_unit,
        "first_band": inputs.bands[0], "last_band": inputs.bands[-1],
        "components_tested": int(basis.components.shape[1]), "pca_fit_rows": basis.fit_rows,
        "explained_variance_ratio": [round(float(v), 6) for v in basis.explained],
    }
    if basis.components.shape[1] == 0:
        info["note"] = "the spectra do not vary; no spectral test applies"
    artefacts = artefact_directions(basis) if basis.components.shape[1] else {}
    directions = (np.column_stack([d for d, _ in artefacts.values()])
                  if artefacts else np.zeros((ref.shape[1], 0)))
    pr, pc = project(ref, basis, directions), project(cand, basis, directions)
    if basis.components.shape[1] == 0:
        return SpectralFeatures(tests, info, basis, pr, pc)
    for j in range(basis.components.shape[1]):
        tests.append(ks_test(
            f"PC{j + 1}", "component", pr.scores[:, j], pc.scores[:, j],
            f"score on principal component {j + 1} ({100 * basis.explained[j]:.2f}% of pooled variance)",
        ))
    tests.append(ks_test(
        "spectral residual (Q)", "component", pr.residual, pc.residual,
        "squared distance of each spectrum to the component subspace: new features, noise or gain",
    ))
    for j, (name, (_, text)) in enumerate(artefacts.items()):
        tests.append(mann_whitney_test(name, pr.probes[:, j], pc.probes[:, j], text))
    return SpectralFeatures(tests, info, basis, pr, pc)
