"""Judge each spectrum against the model's calibration domain: scale check, T2/Q, interval, context.

Everything per model is precomputed at load (projection matrix, inverse variances, limits), so a
request costs two matrix products and a few vectorised comparisons. Mirrors
``soil_trainer.domain.score_domain`` (the API does not import the trainer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from soil_contracts.domain import ApplicabilityDomain
from soil_contracts.library import PLAUSIBLE_MAX, PLAUSIBLE_MIN, Scale, likely_scale
from soil_model_api.problems import MAX_REPORTED, InvalidRequest, problem

# What each artefact check's direction means, for reasons.
ARTEFACT_WORDS = {"offset": "a constant added to every band (a reflectance offset: dark current, reference panel)",
                  "gain": "every band scaled by one factor (a gain change: lamp, reference panel, distance)"}
NO_DOMAIN = "the model carries no domain.json (trained before domains were recorded); not judged"
# Above this no spectrum is on any scale (percent reflectance tops out near 100).
PHYSICAL_MAX = max(high for _, high in PLAUSIBLE_MAX.values())


class DomainJudge:
    """The per-model part of every prediction's context; ``domain`` None serves without judging."""

    def __init__(self, domain: ApplicabilityDomain | None, scale: Scale | None, target: str | None,
                 unit: str | None):
        self.domain = domain
        self.target, self.unit = target, unit
        self.scale = domain.scale if domain is not None else scale
        if domain is not None:
            ranges = domain.value_range
            self.max_low, self.max_high, self.min_low = ranges.max_low, ranges.max_high, ranges.min_low
        elif scale is not None:
            (self.max_low, self.max_high), self.min_low = PLAUSIBLE_MAX[scale], PLAUSIBLE_MIN
        else:  # no declared scale: refuse only what no reflectance or absorbance spectrum holds
            self.max_low, self.max_high, self.min_low = -np.inf, PHYSICAL_MAX, PLAUSIBLE_MIN
        if domain is None:
            return
        self.mean = np.asarray(domain.mean, dtype=np.float64)
        components = np.asarray(domain.components, dtype=np.float64)
        self.loadings = np.ascontiguousarray(components.T)  # (n_features, k)
        self.inv_var = 1.0 / np.asarray(domain.score_variances, dtype=np.float64)
        limit = domain.limit(domain.flag_confidence)
        self.t2_limit, self.q_limit, self.confidence = limit.t2, limit.q, domain.flag_confidence
        width = domain.interval(domain.default_coverage)
        self.half_width, self.coverage = width.half_width, width.coverage
        self.target_min, self.target_max = domain.target_min, domain.target_max
        self.min_span = domain.value_range.min_span  # None: a domain.json written before it was recorded
        # Artefact checks as two weight matrices (input space, absorbance), in that order of columns.
        self.artefacts = [c for c in domain.artefacts if c.space == "input"] + [
            c for c in domain.artefacts if c.space == "absorbance"]
        self.artefact_names = [c.name for c in self.artefacts]
        self.z_lower = np.array([c.lower for c in self.artefacts], dtype=np.float64)
        self.z_upper = np.array([c.upper for c in self.artefacts], dtype=np.float64)
        self.w_input = self.w_absorbance = None
        inputs = [c for c in self.artefacts if c.space == "input"]
        absorbance = [c for c in self.artefacts if c.space == "absorbance"]
        if inputs:
            self.w_input = np.column_stack([np.asarray(c.weights, dtype=np.float64) for c in inputs])
            self.b_input = np.array([c.offset for c in inputs], dtype=np.float64)
        if absorbance:
            self.w_absorbance = np.column_stack([np.asarray(c.weights, dtype=np.float64) for c in absorbance])
            self.b_absorbance = np.array([c.offset + math.log10(c.reference) * float(np.sum(c.weights))
                                          for c in absorbance], dtype=np.float64)

    def raw_findings(self, spectra: np.ndarray) -> list[str | None] | None:
        """Checks on the raw (n, n_bands) spectra, before preprocessing: per spectrum, why it is out of
        domain (too flat: span below ``min_span``; an artefact check's z outside its limits) or None;
        None for the whole batch when every spectrum passes or the domain records no such checks.

        Mirrors ``soil_trainer.domain.out_of_domain``'s raw part. z = weights @ s + offset, s the spectrum
        in the check's space (``ArtefactCheck``); in absorbance log10(reference / x) @ w is
        log10(reference) sum(w) - log10(x) @ w, so every check is one column of two precomputed
        matrices. The all-clear costs two reductions, a log10 and two small products; reasons are
        written only for spectra that fail.
        """
        if self.domain is None or (self.min_span is None and not self.artefacts):
            return None
        spans = spectra.max(axis=1) - spectra.min(axis=1) if self.min_span is not None else None
        z = self._artefact_z(spectra)
        bad = (spans < self.min_span) if spans is not None else np.zeros(spectra.shape[0], dtype=bool)
        if z is not None:
            bad = bad | ~((z >= self.z_lower) & (z <= self.z_upper)).all(axis=1)  # NaN: no absorbance, outside
        if not bad.any():
            return None
        found: list[str | None] = [None] * spectra.shape[0]
        for i in np.flatnonzero(bad):
            parts = []
            if spans is not None and spans[i] < self.min_span:
                parts.append(f"the spectrum spans only {spans[i]:.4g} (largest minus smallest value); calibration "
                             f"spectra span at least {2 * self.min_span:.4g} (a flat or implausible spectrum)")
            for j, name in enumerate(self.artefact_names if z is not None else []):
                value, lower, upper = z[i, j], self.z_lower[j], self.z_upper[j]
                if not lower <= value <= upper:
                    parts.append(f"{name} check z {value:.4g} is outside its limits {lower:.4g} .. {upper:.4g} "
                                 f"(the spectrum looks like a calibration spectrum with "
                                 f"{ARTEFACT_WORDS.get(name, 'an artefact')})")
            found[i] = "; ".join(parts)
        return found

    def _artefact_z(self, spectra: np.ndarray) -> np.ndarray | None:
        """(n, n_checks) artefact statistics, input-space checks first, then absorbance ones."""
        if not self.artefacts:
            return None
        columns = []
        if self.w_input is not None:
            columns.append(spectra @ self.w_input + self.b_input)
        if self.w_absorbance is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                columns.append(self.b_absorbance - np.log10(spectra) @ self.w_absorbance)
        return columns[0] if len(columns) == 1 else np.hstack(columns)

    def plausible(self, spectra: np.ndarray) -> bool:
        """True when every value of the (n, n_bands) array is finite and every spectrum is on the model's scale.

        A cheap all-clear (two or three reductions) for what ``check_scale`` and
        ``BandSchema.check_finite`` accept; when it is False those two name what is wrong.
        """
        low = float(np.minimum.reduce(spectra, axis=None))
        if spectra.shape[0] == 1:
            high = lowest_max = float(np.maximum.reduce(spectra, axis=None))
        else:
            row_max = np.maximum.reduce(spectra, axis=1)
            high, lowest_max = float(row_max.max()), float(row_max.min())
        # NaN makes min and max NaN, and every comparison with NaN is False.
        return (math.isfinite(low) and math.isfinite(high) and low >= self.min_low and high <= self.max_high
                and lowest_max >= self.max_low)

    def check_scale(self, spectra: np.ndarray) -> None:
        """Refuse (422) spectra whose values cannot be on the model's input scale, naming the likely one.

        A model without a declared scale refuses only values outside every scale (below -0.5 or above 120).
        """
        row_max, row_min = spectra.max(axis=1), spectra.min(axis=1)
        bad = np.flatnonzero((row_max < self.max_low) | (row_max > self.max_high) | (row_min < self.min_low))
        if bad.size == 0:
            return
        errors = []
        for i in bad[:MAX_REPORTED]:
            values = f"values {row_min[i]:.4g} .. {row_max[i]:.4g}"
            if self.scale is None or row_max[i] > PHYSICAL_MAX:
                msg = (f"{values} are outside every reflectance or absorbance scale (from {PLAUSIBLE_MIN:g} "
                       f"to {PHYSICAL_MAX:g})")
                if self.scale is not None:
                    msg += f"; the model takes {self.scale.value}: {conversion_hint(self.scale)}"
            else:
                msg = (f"{values} look like {likely_scale(float(row_max[i]), float(row_min[i]))}, but the model "
                       f"takes {self.scale.value} (largest value {self.max_low:g} .. {self.max_high:g}); "
                       f"{conversion_hint(self.scale)}")
            errors.append(problem(["spectra", int(i)], msg, "wrong_scale"))
        if bad.size > len(errors):
            errors[-1]["msg"] += f" (and {bad.size - len(errors)} more spectra)"
        raise InvalidRequest(422, errors)

    def score(self, features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(T2, Q) per row of the preprocessed spectra; None without a domain or features."""
        if self.domain is None or features is None or features.shape[1] != self.mean.shape[0]:
            return None
        centred = features - self.mean
        scores = centred @ self.loadings
        t2 = (scores * scores) @ self.inv_var
        q = np.vecdot(centred, centred) - np.vecdot(scores, scores)  # row-wise squared norms
        return t2, np.maximum(q, 0.0, out=q)

    def results(self, predictions: np.ndarray, scored: tuple[np.ndarray, np.ndarray] | None,
                spectra: np.ndarray | None = None) -> list[dict[str, Any]]:
        """One context object per prediction (see ``schemas.SpectrumResult``); ``spectra``: the (n, n_bands)
        input spectra, for the flatness check."""
        return self.assess(predictions, scored, spectra)[0]

    def assess(self, predictions: np.ndarray, scored: tuple[np.ndarray, np.ndarray] | None,
               spectra: np.ndarray | None = None) -> tuple[list[dict[str, Any]], int]:
        """``results`` and how many of them are out of domain."""
        if scored is None:
            return self.contexts(predictions.tolist(), None, None)
        raw = None if spectra is None else self.raw_findings(spectra)
        return self.contexts(predictions.tolist(), scored[0].tolist(), scored[1].tolist(), raw)

    def contexts(self, values: list[float], t2s: list[float] | None, qs: list[float] | None,
                 raw: list[str | None] | None = None) -> tuple[list[dict[str, Any]], int]:
        """One context object per prediction (``values``, with T2 and Q per spectrum or None: not judged)
        and how many are out of domain.

        ``raw`` (from ``raw_findings``): why a raw spectrum failed a check, else None. An
        out-of-domain spectrum gets no interval (``interval`` null, the reason says why): the conformal
        half-width holds only for spectra of the calibration population, and a narrow band around a
        prediction the model cannot vouch for would look confident.

        Per spectrum in Python floats: the same IEEE arithmetic as numpy's, without its per-call cost
        for the one or few spectra of most requests.
        """
        target, unit = self.target, self.unit
        if t2s is None or qs is None:
            return [{"value": v, "target": target, "unit": unit, "interval": None, "t2": None, "q": None,
                     "in_domain": None, "in_calibration_range": None, "reason": NO_DOMAIN} for v in values], 0
        half, coverage, t2_limit, q_limit = self.half_width, self.coverage, self.t2_limit, self.q_limit
        low, high = self.target_min, self.target_max
        out = []
        outside = 0
        for i, (value, t2, q) in enumerate(zip(values, t2s, qs, strict=True)):
            finding = raw[i] if raw is not None else None
            inside = not (t2 > t2_limit or q > q_limit or finding is not None)
            if not inside:
                outside += 1
            out.append({
                "value": value, "target": target, "unit": unit,
                "interval": {"lower": value - half, "upper": value + half, "coverage": coverage} if inside else None,
                "t2": t2, "q": q, "in_domain": inside, "in_calibration_range": low <= value <= high,
                "reason": None if inside else self.reason(t2, q, finding),
            })
        return out, outside

    def reason(self, t2: float, q: float, finding: str | None = None) -> str:
        """Which limit a spectrum exceeds and by how much, in words, and that it gets no interval."""
        parts = [finding] if finding is not None else []
        pct = f"{self.confidence * 100:g}%"
        if t2 > self.t2_limit:
            parts.append(f"Hotelling T2 {t2:.4g} is {t2 / self.t2_limit:.2f}x its {pct} limit {self.t2_limit:.4g} "
                         "(an extreme combination of calibration features)")
        if q > self.q_limit:
            parts.append(f"Q residual {q:.4g} is {q / self.q_limit:.2f}x its {pct} limit {self.q_limit:.4g} "
                         "(a spectral shape the calibration spectra do not have)")
        return "; ".join(parts) + "; no interval: its coverage holds only for spectra like the calibration spectra"

    def summary(self) -> dict[str, Any] | None:
        """What GET /v1/model says about the domain."""
        if self.domain is None:
            return None
        d = self.domain
        return {"components": len(d.components), "explained_variance": d.explained_variance,
                "flag_confidence": d.flag_confidence, "t2_limit": self.t2_limit, "q_limit": self.q_limit,
                "target_min": d.target_min, "target_max": d.target_max, "coverage": self.coverage,
                "half_width": self.half_width, "interval_method": d.interval_method, "limit_method": d.limit_method,
                "n_samples": d.n_samples, "min_span": self.min_span,
                "artefact_checks": [{"name": c.name, "space": c.space, "lower": c.lower, "upper": c.upper}
                                    for c in self.artefacts]}


def conversion_hint(scale: Scale) -> str:
    """How to bring a spectrum onto ``scale``, for messages."""
    if scale is Scale.REFLECTANCE_PERCENT:
        return "send percent reflectance (fraction x 100; from absorbance A: 100 x 10^-A)"
    if scale is Scale.REFLECTANCE_FRACTION:
        return "send reflectance as a fraction (percent / 100; from absorbance A: 10^-A)"
    return "send apparent absorbance log10(1/R), R the reflectance fraction"
