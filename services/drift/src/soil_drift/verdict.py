"""The verdict: every test's result, the Holm correction over the family, the JSON and the summary line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soil_drift.config import DriftParams
from soil_drift.samples import DriftInputs

METHOD = "pooled-PCA spectral tests + per-column KS / chi-squared, Holm-corrected"
# The status of a run whose candidate has no rows: nothing to test, exit 0 (not a pass: nothing passed).
NO_CANDIDATE = "no_candidate"
NO_CANDIDATE_SUMMARY = "No new samples relative to the base: nothing to test."
# The status of a run without a reference (no base batch is left unchanged: the base has none, or the
# branch replaced or removed every one it had): nothing to compare the candidate with, exit 0; the report
# asks a person to look, it does not call this a pass.
NO_REFERENCE = "no_reference"
NO_REFERENCE_SUMMARY = ("No trusted reference yet: the reference table has no rows (the base revision has no "
                        "library batches, or the branch replaced or removed every one it had), so the new "
                        "samples cannot be compared with anything.")


def json_number(value: float | None) -> float | None:
    """``value`` as a float for JSON; NaN and infinities become None (null)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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
            "statistic": json_number(self.statistic),
            "p_value": json_number(self.p_value),
            "p_adjusted": json_number(self.p_adjusted),
            "drifted": self.drifted(alpha),
            "effect": {k: json_number(v) for k, v in self.effect.items()},
            **({"description": self.description} if self.description else {}),
        }


@dataclass
class Untested:
    """A column the gate could not test (no value in one of the files); listed, never counted as a pass."""

    name: str
    kind: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "reason": self.reason}


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
            "n_bands": self.n_bands, "max_abs_t": json_number(self.max_abs_t),
            "p_adjusted": json_number(self.p_adjusted), "mean_difference": json_number(self.mean_difference),
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
    untested: list[Untested] = field(default_factory=list)
    acceptance: dict[str, Any] | None = None  # accepted candidate batches and the others' own result (acceptance.py)

    @property
    def drifted_tests(self) -> list[TestResult]:
        hits = [t for t in self.tests if t.drifted(self.alpha)]
        return sorted(hits, key=lambda t: (t.p_adjusted, -abs(t.statistic)))

    def top_drifted(self, limit: int = 20) -> list[dict[str, Any]]:
        items = [
            {"name": t.name, "kind": t.kind, "statistic": json_number(t.statistic),
             "p_value": json_number(t.p_adjusted), "test": t.test}
            for t in self.drifted_tests
        ]
        items += [
            {"name": r.name, "kind": "region", "statistic": json_number(r.max_abs_t),
             "p_value": json_number(r.p_adjusted), "test": f"welch-t per band ({r.basis}), BH"}
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
            "reference": self._file("reference"),
            "candidate": self._file("candidate"),
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
            **({"untested": [u.as_dict() for u in self.untested]} if self.untested else {}),
            **({"acceptance": self.acceptance} if self.acceptance else {}),
        }

    def _file(self, side: str) -> dict[str, Any]:
        """Path and rows of one input; ``missing`` (column -> NaN count) when a column misses values."""
        inputs, first = self.inputs, side == "reference"
        entry: dict[str, Any] = {
            "path": inputs.reference_path if first else inputs.candidate_path,
            "rows": inputs.n_reference if first else inputs.n_candidate,
        }
        if inputs.missing:
            entry["missing"] = {name: pair[0 if first else 1] for name, pair in inputs.missing.items()}
        return entry


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the order given."""
    m = len(p)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    return out


def adjust(tests: list[TestResult]) -> None:
    """Set every test's ``p_adjusted`` by Holm over the whole family."""
    if tests:
        adjusted = holm(np.array([t.p_value for t in tests]))
        for t, a in zip(tests, adjusted, strict=True):
            t.p_adjusted = float(a)


# Spectral-effect tests (soil_drift.level, soil_drift.spectral.artefact_directions): a significant one names
# the cause (instrument or preparation) better than the components it moves, so summaries put it first.
EFFECTS = ("spectrum level", "baseline offset", "gain", "wavelength shift")


def describe_level(test: TestResult) -> str:
    """``spectra are 4.1% higher (brighter, in reflectance) on average than the reference (95% CI 2.0-6.2%...)``."""
    change = test.effect.get("level_change", 0.0)
    low, high = test.effect.get("level_change_low", change), test.effect.get("level_change_high", change)
    word = "higher (brighter, in reflectance)" if change > 0 else "lower (darker, in reflectance)"
    if change < 0:
        low, high = -high, -low
    return (f"spectra are {100 * abs(change):.1f}% {word} on average than the reference "
            f"(95% CI {100 * low:.1f} to {100 * high:.1f}%, at the same spectral shape)")


def effect_range(verdict: DriftVerdict) -> str:
    """Where an effect shows: the band range tested (the effect's direction spans it), and the region
    whose mean moved most clearly, if any (``across 350-2495 nm, strongest in 400-580 nm``)."""
    unit = verdict.inputs.band_unit
    view = verdict.spectra
    text = (f"across {float(view.positions.min()):g}-{float(view.positions.max()):g} {unit}"
            if view is not None and len(view.positions) else "across the spectrum")
    if verdict.regions:
        top = min(verdict.regions, key=lambda r: r.p_adjusted)
        span = f"{top.start:g}-{top.end:g}" if top.start != top.end else f"{top.start:g}"
        text += f", strongest in {span} {unit}"
    return text


def summarise(verdict: DriftVerdict) -> str:
    """One sentence for the PR report, then one each for missing values and untested columns."""
    text = _decision(verdict)
    inputs = verdict.inputs
    if inputs.missing:
        counts = "; ".join(
            f"{name} {cand} of {inputs.n_candidate} candidate and {ref} of {inputs.n_reference} reference rows"
            for name, (ref, cand) in inputs.missing.items()
        )
        text += f" Missing values (pending; each column tested on the values present): {counts}."
    if verdict.untested:
        text += " Not tested: " + "; ".join(f"{u.name} ({u.reason})" for u in verdict.untested) + "."
    return text


def _decision(verdict: DriftVerdict) -> str:
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
    effects = [t for t in hits if t.name in EFFECTS]
    hits = effects + [t for t in hits if t.name not in EFFECTS]
    names = ", ".join(t.name for t in hits[:4]) + (f" and {len(hits) - 4} more" if len(hits) > 4 else "")
    lead = ""
    level = next((t for t in effects if t.name == "spectrum level"), None)
    if level is not None:  # the level says by how much, in the lab's terms (level.describe)
        lead = f"{describe_level(level)}; "
        effects = [t for t in effects if t is not level]
    if effects:
        lead += (f"{' and '.join(t.name for t in effects)} {effect_range(verdict)}, a spectral effect "
                 "(instrument or sample preparation)")
    if lead:
        lead = lead.removesuffix("; ") + ", then the rest: "
    text = (f"Drift: {lead}{len(hits)} of {family} significant after Holm correction at alpha "
            f"{verdict.alpha:g} ({names}; {where})")
    if verdict.regions and not effects:
        text += "; spectra moved in " + ", ".join(r.name for r in verdict.regions[:3])
        if len(verdict.regions) > 3:
            text += f" and {len(verdict.regions) - 3} more regions"
    return text + "."
