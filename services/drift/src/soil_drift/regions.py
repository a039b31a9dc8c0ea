"""Where the spectra moved: per-band Welch t-tests, Benjamini-Hochberg over bands, runs named as regions.

Regions describe a drift the test family has already found; they never decide it.
"""

from __future__ import annotations

import numpy as np

from soil_drift.samples import DriftInputs
from soil_drift.spectral import Projection, SpectralBasis, residual_moments
from soil_drift.verdict import Region, SpectralView

REGION_GAP = 2  # significant bands this close together form one region
MAX_REGIONS = 12


def welch(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Per-band Welch t statistics, two-sided p-values and standard errors of the mean difference."""
    se2_a, se2_b = var_a / n_a, var_b / n_b
    se = np.sqrt(se2_a + se2_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, (mean_b - mean_a) / se, 0.0)
        dof = (se2_a + se2_b) ** 2 / (se2_a**2 / max(n_a - 1, 1) + se2_b**2 / max(n_b - 1, 1))
    dof = np.where(np.isfinite(dof), dof, max(n_a + n_b - 2, 1))
    from scipy import stats
    return t, 2 * stats.t.sf(np.abs(t), dof), se


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given."""
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    return out


def find_regions(
    t: np.ndarray, p_adj: np.ndarray, diff: np.ndarray, alpha: float, bands: list[str],
    positions: np.ndarray, basis: str,
) -> list[Region]:
    """Runs of bands with ``p_adj <= alpha`` (gaps up to REGION_GAP bridged), most significant first."""
    hit = np.flatnonzero(p_adj <= alpha)
    if hit.size == 0:
        return []
    runs, start, prev = [], hit[0], hit[0]
    for i in hit[1:]:
        if i - prev > REGION_GAP + 1:
            runs.append((start, prev))
            start = i
        prev = i
    runs.append((start, prev))
    regions = []
    for a, b in runs:
        sig = np.arange(a, b + 1)
        sig = sig[p_adj[sig] <= alpha]
        regions.append(Region(
            name=f"{bands[a]}..{bands[b]}" if a != b else bands[a],
            basis=basis, start=float(positions[a]), end=float(positions[b]), n_bands=int(b - a + 1),
            max_abs_t=float(np.abs(t[sig]).max()), p_adjusted=float(p_adj[sig].min()),
            mean_difference=float(diff[sig].mean()), first_index=int(a), last_index=int(b),
        ))
    regions.sort(key=lambda r: (r.p_adjusted, -r.max_abs_t))
    return regions[:MAX_REGIONS]


def compare_band_means(
    inputs: DriftInputs, reference: Projection, candidate: Projection,
) -> tuple[SpectralView, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mean spectra for the plot, and per-band Welch tests on the raw values: (t, p, mean difference)."""
    t, p, se = welch(reference.band_mean, reference.band_var, inputs.n_reference,
                     candidate.band_mean, candidate.band_var, inputs.n_candidate)
    view = SpectralView(inputs.positions, inputs.bands, inputs.band_unit,
                        reference.band_mean, candidate.band_mean, se)
    return view, (t, p, candidate.band_mean - reference.band_mean)


def locate_regions(
    inputs: DriftInputs, basis: SpectralBasis, raw: tuple[np.ndarray, ...], alpha: float,
) -> list[Region]:
    """Regions where the raw values moved, and where spectra moved off the component subspace."""
    t_raw, p_raw, diff_raw = raw
    regions = find_regions(t_raw, benjamini_hochberg(p_raw), diff_raw, alpha,
                           inputs.bands, inputs.positions, "values")
    if basis.components.shape[1]:
        mean_a, var_a = residual_moments(inputs.reference_spectra, basis)
        mean_b, var_b = residual_moments(inputs.candidate_spectra, basis)
        t_res, p_res, _ = welch(mean_a, var_a, inputs.n_reference, mean_b, var_b, inputs.n_candidate)
        regions += find_regions(t_res, benjamini_hochberg(p_res), mean_b - mean_a, alpha,
                                inputs.bands, inputs.positions, "residual")
    regions.sort(key=lambda r: (r.p_adjusted, -r.max_abs_t))
    return regions[:MAX_REGIONS]
