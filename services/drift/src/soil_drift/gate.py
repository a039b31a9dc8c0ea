"""The drift verdict: one family of label-blind two-sample tests, Holm-corrected at ``drift.alpha``.

Every spectral feature is computed from the pooled rows without knowing which file a row came
from (PCA basis, mean spectrum, artefact directions). Under "no drift" the rows are exchangeable,
so the rank tests on those features keep their nominal level exactly, however correlated the bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import linalg, stats

from soil_drift.config import DriftParams
from soil_drift.io import DriftInputs

METHOD = "pooled-PCA spectral tests + per-column KS / chi-squared, Holm-corrected"
PCA_FIT_ROWS = 5000  # a label-blind random subsample fits the basis for larger inputs
CHUNK_ROWS = 8192  # rows converted to float64 at a time
PERMUTATION_MAX_ROWS = 2000  # above this the Hotelling test uses its F approximation
MIN_PERMUTATIONS = 1999
SEQUENTIAL_HITS = 20  # stop permuting once this many permutation statistics reach the observed one
MIN_SPECTRAL_BANDS = 3
REGION_GAP = 2  # significant bands this close together form one region
MAX_REGIONS = 12
SEED = 20250501
PSI_BINS = 10


@dataclass
class TestResult:
    """One member of the test family."""

    name: str
    kind: str  # "column" | "component" (spectral features count as components)
    test: str
    statistic: float
    p_value: float
    effect: dict[str, float] = field(default_factory=dict)
    description: str = ""
    p_adjusted: float = float("nan")

    def drifted(self, alpha: float) -> bool:
        return self.p_adjusted <= alpha

    def as_dict(self, alpha: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": _num(self.statistic),
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "drifted": self.drifted(alpha),
            "effect": {k: _num(v) for k, v in self.effect.items()},
            **({"description": self.description} if self.description else {}),
        }


@dataclass
class Region:
    """Contiguous bands whose means differ (Benjamini-Hochberg over bands), on one basis."""

    name: str
    basis: str  # "values" (raw spectra) | "residual" (outside the component subspace)
    start: float
    end: float
    n_bands: int
    max_abs_t: float
    p_adjusted: float
    mean_difference: float
    first_index: int
    last_index: int

    def as_dict(self, unit: str) -> dict[str, Any]:
        return {
            "name": self.name, "basis": self.basis, "start": self.start, "end": self.end, "unit": unit,
            "n_bands": self.n_bands, "max_abs_t": _num(self.max_abs_t),
            "p_adjusted": _num(self.p_adjusted), "mean_difference": _num(self.mean_difference),
        }


@dataclass
class SpectralView:
    """What the plot needs from the spectra: both mean spectra and the standard error of their gap."""

    positions: np.ndarray
    bands: list[str]
    unit: str
    reference_mean: np.ndarray
    candidate_mean: np.ndarray
    difference_se: np.ndarray


@dataclass
class DriftVerdict:
    status: str
    drift_detected: bool
    alpha: float
    summary: str
    tests: list[TestResult]
    regions: list[Region]
    spectral_info: dict[str, Any]
    spectra: SpectralView | None
    inputs: DriftInputs
    params: DriftParams
    warn_only: bool

    @property
    def drifted_tests(self) -> list[TestResult]:
        hits = [t for t in self.tests if t.drifted(self.alpha)]
        return sorted(hits, key=lambda t: (t.p_adjusted, -abs(t.statistic)))

    def top_drifted(self, limit: int = 20) -> list[dict[str, Any]]:
        items = [
            {"name": t.name, "kind": t.kind, "statistic": _num(t.statistic), "p_value": _num(t.p_adjusted),
             "test": t.test}
            for t in self.drifted_tests
        ]
        items += [
            {"name": r.name, "kind": "region", "statistic": _num(r.max_abs_t), "p_value": _num(r.p_adjusted),
             "test": f"welch-t per band ({r.basis}), BH"}
            for r in self.regions
        ]
        items.sort(key=lambda d: (d["p_value"], -abs(d["statistic"] or 0.0)))
        return items[:limit]

    def to_json(self) -> dict[str, Any]:
        columns = [t.as_dict(self.alpha) for t in self.tests if t.kind == "column"]
        spectral = [t.as_dict(self.alpha) for t in self.tests if t.kind == "component"]
        return {
            "status": self.status,
            "drift_detected": self.drift_detected,
            "method": METHOD,
            "alpha": self.alpha,
            "summary": self.summary,
            "top_drifted": self.top_drifted(),
            "reference": {"path": self.inputs.reference_path, "rows": self.inputs.n_reference},
            "candidate": {"path": self.inputs.candidate_path, "rows": self.inputs.n_candidate},
            "tests": {
                "count": len(self.tests),
                "correction": "holm",
                "drifted": len(self.drifted_tests),
            },
            "columns": columns,
            "spectra": {
                **self.spectral_info,
                "components": [t for t in spectral if t["name"].startswith("PC")],
                "features": [t for t in spectral if not t["name"].startswith("PC")],
            },
            "regions": [r.as_dict(self.inputs.band_unit) for r in self.regions],
            "key_column": self.inputs.key_column,
            "warn_only": self.warn_only,
            "params": self.params.model_dump(mode="json"),
        }


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- effect sizes -------------------------------------------------------------------------------

def psi(reference: np.ndarray, candidate: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cand_counts = np.bincount(np.searchsorted(edges, candidate, side="right"), minlength=len(edges) + 1)
    return _psi_counts(ref_counts, cand_counts)


def _psi_counts(ref_counts: np.ndarray, cand_counts: np.ndarray, eps: float = 1e-4) -> float:
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
    n_a, n_b = len(reference), len(candidate)
    if max(n_a, n_b) <= 10_000:
        return float(stats.ks_2samp(reference, candidate).pvalue)
    en = n_a * n_b / (n_a + n_b)
    return float(stats.kstwo.sf(statistic, np.round(en)))


def _numeric_effects(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
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


# --- single tests -------------------------------------------------------------------------------

def ks_test(name: str, kind: str, reference: np.ndarray, candidate: np.ndarray, description: str = "") -> TestResult:
    """Two-sample Kolmogorov-Smirnov with KS, Wasserstein and PSI effect sizes beside the p-value."""
    effects = _numeric_effects(reference, candidate)
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
        res = stats.chi2_contingency(np.vstack([ref_counts, cand_counts]), correction=False)
        stat, p = float(res.statistic), float(res.pvalue)
    n = len(reference) + len(candidate)
    cramers_v = math.sqrt(stat / n) if n else 0.0
    return TestResult(
        name, "column", "chi2", stat, p,
        {"cramers_v": cramers_v, "psi": _psi_counts(ref_counts, cand_counts), "levels": float(len(levels))},
    )


def mann_whitney_test(name: str, reference: np.ndarray, candidate: np.ndarray, description: str) -> TestResult:
    """Location test along an artefact direction; statistic is the AUC (0.5: no shift)."""
    res = stats.mannwhitneyu(candidate, reference, alternative="two-sided")
    auc = float(res.statistic) / (len(reference) * len(candidate))
    effects = _numeric_effects(reference, candidate)
    effects["auc"] = auc
    return TestResult(name, "component", "mann-whitney", auc, float(res.pvalue), effects, description)


# --- spectra ------------------------------------------------------------------------------------

@dataclass
class _Basis:
    mean: np.ndarray  # pooled mean spectrum (float64)
    components: np.ndarray  # bands x k, orthonormal
    explained: np.ndarray  # explained-variance ratio of each component in the fit rows
    fit_rows: int


def _rows(matrices: tuple[np.ndarray, ...], index: np.ndarray) -> np.ndarray:
    """Pooled rows ``index`` (sorted) of the stacked matrices, as float64, without stacking them all."""
    out, offset = [], 0
    for m in matrices:
        local = index[(index >= offset) & (index < offset + len(m))] - offset
        out.append(m[local].astype(np.float64))
        offset += len(m)
    return np.vstack(out)


def fit_basis(reference: np.ndarray, candidate: np.ndarray, n_components: int) -> _Basis:
    """PCA of the pooled spectra, label-blind: fitted on all rows or a uniform random subsample."""
    n = len(reference) + len(candidate)
    mean = (reference.sum(0, dtype=np.float64) + candidate.sum(0, dtype=np.float64)) / n
    if n > PCA_FIT_ROWS:
        index = np.sort(np.random.default_rng(SEED).choice(n, PCA_FIT_ROWS, replace=False))
    else:
        index = np.arange(n)
    fit = _rows((reference, candidate), index) - mean
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
    return _Basis(mean, vectors, explained, len(index))


def _artefact_directions(basis: _Basis) -> dict[str, tuple[np.ndarray, str]]:
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


@dataclass
class _Projection:
    scores: np.ndarray  # rows x k
    residual: np.ndarray  # squared distance to the component subspace
    probes: np.ndarray  # rows x artefact directions
    band_mean: np.ndarray  # per-band mean and variance of the rows (for the plot and the regions)
    band_var: np.ndarray


def project(matrix: np.ndarray, basis: _Basis, directions: np.ndarray) -> _Projection:
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
    return _Projection(scores, np.clip(residual, 0, None), probes, mean + basis.mean, var)


def hotelling_test(ref_scores: np.ndarray, cand_scores: np.ndarray, n_tests: int, alpha: float) -> TestResult:
    """Mean shift across all components at once: Hotelling's T^2 with the pooled (total) covariance.

    Whitening by the total covariance makes the statistic a function of the pooled scores and the
    labels only, so a permutation of the labels gives its exact null distribution.
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
    if n <= PERMUTATION_MAX_ROWS:
        n_perm = max(MIN_PERMUTATIONS, math.ceil(20 * n_tests / alpha))
        p, used = _sequential_permutation_p(white, small, observed, n_perm, n / (n_a * n_b))
        test = f"hotelling-t2 (permutation, {used} of at most {n_perm})"
    else:
        pillai = min(observed / n, 1 - 1e-15)
        f_stat = pillai / (1 - pillai) * (n - k - 1) / k
        p = float(stats.f.sf(f_stat, k, n - k - 1))
        test = "hotelling-t2 (F)"
    return TestResult(
        "all components (Hotelling T2)", "component", test, observed, p,
        {"mahalanobis": distance, "components": float(k)},
        "mean shift across the tested components together",
    )


def _sequential_permutation_p(
    white: np.ndarray, small: int, observed: float, n_perm: int, scale: float, enough: int = SEQUENTIAL_HITS,
) -> tuple[float, int]:
    """Permutation p-value of Hotelling's statistic, stopped early once it is clearly large.

    Besag and Clifford's sequential rule: stop at the ``enough``-th permutation statistic at or
    above the observed one (p = enough / permutations drawn), else use all ``n_perm``
    (p = (1 + exceedances) / (1 + n_perm)). Both are exact p-values.
    """
    n = len(white)
    rng = np.random.default_rng(SEED)
    batch = max(1, min(n_perm, 200_000 // n))
    base = np.tile(np.arange(n), (batch, 1))
    exceed, done = 0, 0
    while done < n_perm:
        m = min(batch, n_perm - done)
        picks = rng.permuted(base[:m], axis=1)[:, :small]
        perm_stats = scale * np.sum(white[picks].sum(1) ** 2, axis=1)
        hits = np.cumsum(perm_stats >= observed * (1 - 1e-12))
        if exceed + hits[-1] >= enough:
            stop = int(np.searchsorted(hits, enough - exceed)) + 1
            return enough / (done + stop), done + stop
        exceed += int(hits[-1])
        done += m
    return (1 + exceed) / (1 + n_perm), n_perm


def _residual_moments(matrix: np.ndarray, basis: _Basis):
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


def welch(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Per-band Welch t statistics and two-sided p-values."""
    se2_a, se2_b = var_a / n_a, var_b / n_b
    se = np.sqrt(se2_a + se2_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, (mean_b - mean_a) / se, 0.0)
        dof = (se2_a + se2_b) ** 2 / (se2_a**2 / max(n_a - 1, 1) + se2_b**2 / max(n_b - 1, 1))
    dof = np.where(np.isfinite(dof), dof, max(n_a + n_b - 2, 1))
    return t, 2 * stats.t.sf(np.abs(t), dof), se


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    return out


def find_regions(
    t: np.ndarray, p_adj: np.ndarray, diff: np.ndarray, alpha: float, bands: list[str],
    positions: np.ndarray, basis: str,
) -> list[Region]:
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


# --- the gate -----------------------------------------------------------------------------------

def _spectral_tests(inputs: DriftInputs, params: DriftParams):
    """Component, residual and artefact-direction tests; also returns the basis and projections."""
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
    artefacts = _artefact_directions(basis) if basis.components.shape[1] else {}
    directions = (np.column_stack([d for d, _ in artefacts.values()])
                  if artefacts else np.zeros((ref.shape[1], 0)))
    pr, pc = project(ref, basis, directions), project(cand, basis, directions)
    if basis.components.shape[1] == 0:
        return tests, info, basis, (pr, pc)
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
    return tests, info, basis, (pr, pc)


def _band_view(inputs: DriftInputs, pr: _Projection, pc: _Projection):
    """Mean spectra for the plot, and per-band Welch tests on the raw values."""
    t, p, se = welch(pr.band_mean, pr.band_var, inputs.n_reference, pc.band_mean, pc.band_var,
                     inputs.n_candidate)
    view = SpectralView(inputs.positions, inputs.bands, inputs.band_unit, pr.band_mean, pc.band_mean, se)
    return view, (t, p, pc.band_mean - pr.band_mean)


def _localise(inputs: DriftInputs, basis: _Basis, raw: tuple[np.ndarray, ...], alpha: float) -> list[Region]:
    """Regions where the raw values moved, and where spectra moved off the component subspace."""
    t_raw, p_raw, diff_raw = raw
    regions = find_regions(t_raw, benjamini_hochberg(p_raw), diff_raw, alpha,
                           inputs.bands, inputs.positions, "values")
    if basis.components.shape[1]:
        mean_a, var_a = _residual_moments(inputs.reference_spectra, basis)
        mean_b, var_b = _residual_moments(inputs.candidate_spectra, basis)
        t_res, p_res, _ = welch(mean_a, var_a, inputs.n_reference, mean_b, var_b, inputs.n_candidate)
        regions += find_regions(t_res, benjamini_hochberg(p_res), mean_b - mean_a, alpha,
                                inputs.bands, inputs.positions, "residual")
    regions.sort(key=lambda r: (r.p_adjusted, -r.max_abs_t))
    return regions[:MAX_REGIONS]


def check_drift(inputs: DriftInputs, params: DriftParams, warn_only: bool = False) -> DriftVerdict:
    """Run every test, correct for their number, and decide pass / warn / fail."""
    tests: list[TestResult] = []
    numeric = dict(inputs.numeric)
    spectral = len(inputs.bands) >= MIN_SPECTRAL_BANDS
    if not spectral:  # one or two bands are just more scalar columns
        for j, band in enumerate(inputs.bands):
            numeric[band] = (inputs.reference_spectra[:, j].astype(np.float64),
                             inputs.candidate_spectra[:, j].astype(np.float64))
    for name, (ref, cand) in numeric.items():
        tests.append(ks_test(name, "column", ref, cand))
    for name, (ref, cand) in inputs.categorical.items():
        tests.append(chi2_test(name, ref, cand))

    basis, info, projections = None, {}, None
    if spectral:
        spec_tests, info, basis, projections = _spectral_tests(inputs, params)
        tests += spec_tests
        if basis.components.shape[1]:
            tests.append(hotelling_test(projections[0].scores, projections[1].scores,
                                        n_tests=len(tests) + 1, alpha=params.alpha))

    if tests:
        adjusted = holm(np.array([t.p_value for t in tests]))
        for t, a in zip(tests, adjusted, strict=True):
            t.p_adjusted = float(a)
    detected = any(t.drifted(params.alpha) for t in tests)

    regions: list[Region] = []
    view = None
    if spectral:
        view, raw = _band_view(inputs, *projections)
        if detected:
            regions = _localise(inputs, basis, raw, params.alpha)

    if not detected:
        status = "pass"
    elif warn_only or params.on_drift == "warn":
        status = "warn"
    else:
        status = "fail"
    verdict = DriftVerdict(
        status=status, drift_detected=detected, alpha=params.alpha, summary="", tests=tests,
        regions=regions, spectral_info=info, spectra=view, inputs=inputs, params=params,
        warn_only=warn_only,
    )
    verdict.summary = summarise(verdict)
    return verdict


def summarise(verdict: DriftVerdict) -> str:
    """One sentence for the PR report."""
    m = len(verdict.tests)
    kinds = []
    n_cols = sum(t.kind == "column" for t in verdict.tests)
    n_pcs = sum(t.name.startswith("PC") for t in verdict.tests)
    n_feat = m - n_cols - n_pcs
    if n_cols:
        kinds.append(f"{n_cols} column{'s' * (n_cols != 1)}")
    if n_pcs:
        kinds.append(f"{n_pcs} principal components")
    if n_feat:
        kinds.append(f"{n_feat} spectral features")
    family = f"{m} tests ({', '.join(kinds)})" if kinds else "no tests"
    where = (f"{verdict.inputs.n_candidate} candidate vs {verdict.inputs.n_reference} reference rows")
    if not verdict.drift_detected:
        best = min(verdict.tests, key=lambda t: t.p_adjusted, default=None)
        tail = f"; smallest adjusted p {best.p_adjusted:.2g} ({best.name})" if best else ""
        return (f"No drift: none of {family} is significant after Holm correction at "
                f"alpha {verdict.alpha:g} ({where}){tail}.")
    hits = verdict.drifted_tests
    names = ", ".join(t.name for t in hits[:4]) + (f" and {len(hits) - 4} more" if len(hits) > 4 else "")
    text = (f"Drift: {len(hits)} of {family} significant after Holm correction at alpha "
            f"{verdict.alpha:g} ({names}; {where})")
    if verdict.regions:
        text += "; spectra moved in " + ", ".join(r.name for r in verdict.regions[:3])
        if len(verdict.regions) > 3:
            text += f" and {len(verdict.regions) - 3} more regions"
    return text + "."
