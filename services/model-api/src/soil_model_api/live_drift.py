"""Drift on live traffic: a bounded window of recent spectra, tested against the calibration sample by
the drift gate's own method (``soil_drift.gate.check_drift``), on a schedule and on request.

The window is a ring buffer of ``MODEL_API_DRIFT_WINDOW`` rows x bands (float32), allocated once per
model: memory is fixed (200 x 430 bands: 344 KB), and nothing is ever written to disk. Only the event
loop touches it (predict runs inline there, and a check copies the window there before it leaves for
a worker thread), so inserting a request's spectra is one O(rows x bands) copy with no lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from soil_contracts.bands import band_positions
from soil_drift.config import DriftParams
from soil_drift.gate import check_drift
from soil_drift.samples import DriftInputs
from soil_drift.verdict import METHOD, DriftVerdict, json_number
from soil_model_api.metrics import LiveTrafficMetrics

log = logging.getLogger(__name__)

MAX_FINDINGS = 10
SMALL_BATCH = 8  # up to this many spectra a request, T2/Q reach the histograms one by one
NO_CALIBRATION = ("the model carries no calibration_sample.json (trained before live drift existed); "
                  "retrain it to compare live traffic with its calibration spectra")


class SpectraWindow:
    """The last ``capacity`` spectra served (float32), and whether each was scored out of domain.

    Args:
        capacity: rows kept; older ones are overwritten first.
        n_bands: values per spectrum.
    """

    def __init__(self, capacity: int, n_bands: int):
        self.capacity = capacity
        self._rows = np.zeros((capacity, n_bands), dtype=np.float32)
        self._outside = np.zeros(capacity, dtype=bool)
        self._next = 0  # where the next row goes
        self.size = 0  # rows filled, at most capacity
        self.seen = 0  # spectra added since start: a check of the same ``seen`` would see the same window

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes + self._outside.nbytes

    def add(self, spectra: np.ndarray, outside: np.ndarray | list[bool] | None = None) -> None:
        """Append (n, n_bands) spectra (any float dtype; cast to float32); ``outside``: (n,) out-of-domain flags.

        A batch longer than the window keeps only its last ``capacity`` rows.
        """
        n = len(spectra)
        if n == 0:
            return
        self.seen += n
        if n == 1:  # the common request: one row copied (its leading axis of 1 broadcast away), no slicing
            i = self._next
            self._rows[i] = spectra
            self._outside[i] = bool(outside[0]) if outside is not None else False
            self._next = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)
            return
        if outside is None:
            outside = np.zeros(n, dtype=bool)
        outside = np.asarray(outside, dtype=bool)
        if n >= self.capacity:
            self._rows[:] = spectra[n - self.capacity:]
            self._outside[:] = outside[n - self.capacity:]
            self._next, self.size = 0, self.capacity
            return
        first = min(n, self.capacity - self._next)
        stop = self._next + first
        self._rows[self._next:stop] = spectra[:first]
        self._outside[self._next:stop] = outside[:first]
        if first < n:  # wrap around to the start
            self._rows[:n - first] = spectra[first:]
            self._outside[:n - first] = outside[first:]
        self._next = (self._next + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def snapshot(self) -> np.ndarray:
        """A copy of the filled rows, oldest first: (size, n_bands) float32."""
        if self.size < self.capacity:
            return self._rows[:self.size].copy()
        return np.concatenate([self._rows[self._next:], self._rows[:self._next]])

    def out_of_domain_ratio(self) -> float:
        """Share of the window's spectra scored out of domain (NaN when empty)."""
        return float(self._outside[:self.size].mean()) if self.size else float("nan")


@dataclass
class DriftReport:
    """One live drift check: ``status`` pass / fail / insufficient_data / unavailable."""

    status: str
    window_rows: int
    seen: int
    checked_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    summary: str = ""
    verdict: DriftVerdict | None = None
    out_of_domain_ratio: float = float("nan")  # of the window the check tested

    @property
    def p_value(self) -> float | None:
        """Smallest Holm-adjusted p-value of the family (None without a verdict)."""
        if self.verdict is None or not self.verdict.tests:
            return None
        return min(t.p_adjusted for t in self.verdict.tests)


class LiveDrift:
    """The window, the calibration sample and the gate's params of one served model."""

    def __init__(self, calibration: np.ndarray | None, bands: list[str], capacity: int, params: DriftParams,
                 metrics: LiveTrafficMetrics, source: str):
        self.calibration = calibration  # (n, n_bands) float32, or None: drift cannot be checked
        self.bands = bands
        self.positions = np.asarray(band_positions(bands), dtype=np.float64)
        self.params = params
        self.window = SpectraWindow(capacity, len(bands))
        self.metrics = metrics
        self.source = source  # names the reference in messages, e.g. "soil-soc version 3"
        self.last: DriftReport | None = None
        self._lock = asyncio.Lock()  # one check at a time; later callers reuse its result

    def observe(self, spectra: np.ndarray, scored: tuple[np.ndarray, np.ndarray] | tuple[list, list] | None,
                t2_limit: float | None, q_limit: float | None, flat: list[float | None] | None = None) -> None:
        """Record one accepted request: its spectra into the window, T2/Q (arrays or lists of floats,
        one per spectrum) into the histograms; ``flat`` (``DomainJudge.too_flat``) marks implausibly flat
        spectra out of domain too."""
        outside = None
        if scored is not None and t2_limit and q_limit:
            t2, q = scored
            if len(t2) <= SMALL_BATCH:  # Python floats beat numpy's per-call overhead for a few values
                outside = []
                for a, b in zip(as_floats(t2), as_floats(q), strict=True):
                    self.metrics.t2.observe_one(a / t2_limit)
                    self.metrics.q.observe_one(b / q_limit)
                    outside.append(a > t2_limit or b > q_limit)
            else:
                t2, q = np.asarray(t2, dtype=np.float64), np.asarray(q, dtype=np.float64)
                self.metrics.t2.observe_many(t2 / t2_limit)
                self.metrics.q.observe_many(q / q_limit)
                outside = (t2 > t2_limit) | (q > q_limit)
            if flat is not None:
                outside = [bool(o) or span is not None for o, span in zip(outside, flat, strict=True)]
        self.window.add(spectra, outside)

    async def check(self) -> DriftReport:
        """Run the gate on the window now, unless the window has not changed since the last check."""
        async with self._lock:
            if self.last is not None and self.last.seen == self.window.seen:
                return self.last
            seen, rows = self.window.seen, self.window.snapshot()  # on the event loop: no torn copy
            ratio = self.window.out_of_domain_ratio()
            report = await asyncio.to_thread(self.run, rows, seen)
            report.out_of_domain_ratio = ratio
            self.last = report
            self.metrics.window_rows.set(report.window_rows)
            self.metrics.window_out_of_domain.set(ratio)
            self.metrics.record_check(report.status, report.p_value, report.seconds, report.checked_at)
            log.info("live drift check: %s (%d spectra in the window)", report.status, report.window_rows)
            return report

    def run(self, rows: np.ndarray, seen: int) -> DriftReport:
        """The gate's family of tests, calibration sample vs ``rows`` (n, n_bands); CPU-bound, any thread."""
        start = time.perf_counter()
        if self.calibration is None:
            return DriftReport("unavailable", len(rows), seen, summary=NO_CALIBRATION)
        if len(rows) < self.params.min_rows:
            return DriftReport(
                "insufficient_data", len(rows), seen,
                summary=f"{len(rows)} spectra in the window, fewer than the {self.params.min_rows} the drift "
                        "tests need (MODEL_API_DRIFT_MIN_ROWS); no verdict yet")
        inputs = DriftInputs(
            reference_path=f"calibration sample of {self.source}", candidate_path="live window",
            n_reference=len(self.calibration), n_candidate=len(rows), bands=self.bands,
            positions=self.positions, reference_spectra=self.calibration, candidate_spectra=rows,
        )
        verdict = check_drift(inputs, self.params)
        return DriftReport(verdict.status, len(rows), seen, seconds=time.perf_counter() - start,
                           summary=verdict.summary, verdict=verdict)

    def to_json(self, report: DriftReport) -> dict[str, Any]:
        """The ``GET /v1/drift`` body."""
        verdict = report.verdict
        return {
            "status": report.status,
            "drift_detected": None if verdict is None else verdict.drift_detected,
            "summary": report.summary,
            "checked_at": datetime.fromtimestamp(report.checked_at, UTC).isoformat(timespec="seconds"),
            "check_seconds": round(report.seconds, 4),
            "window": {"rows": report.window_rows, "capacity": self.window.capacity,
                       "min_rows": self.params.min_rows, "spectra_seen": report.seen,
                       "out_of_domain_ratio": json_number(report.out_of_domain_ratio)},
            "reference": {"source": f"calibration_sample.json of {self.source}",
                          "rows": 0 if self.calibration is None else len(self.calibration)},
            "method": METHOD, "alpha": self.params.alpha,
            "p_value": json_number(report.p_value),
            "findings": findings(verdict) if verdict is not None else [],
        }


def as_floats(values: np.ndarray | list[float]) -> list[float]:
    """``values`` as a list of Python floats."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def findings(verdict: DriftVerdict, limit: int = MAX_FINDINGS) -> list[dict[str, Any]]:
    """The drifted tests, then the regions where spectra moved; without drift, the three closest calls.

    Each: ``name``, ``kind`` (component / region), ``test``, ``p_value`` (Holm-adjusted; for a region
    the smallest Benjamini-Hochberg value), ``statistic``, ``drifted``, ``effect`` (effect sizes) and
    ``region`` (``start``, ``end``, ``unit``) for a wavelength region.
    """
    hits = verdict.drifted_tests or sorted(verdict.tests, key=lambda t: t.p_adjusted)[:3]
    out = [{"name": t.name, "kind": t.kind, "test": t.test, "p_value": json_number(t.p_adjusted),
            "statistic": json_number(t.statistic), "drifted": t.drifted(verdict.alpha),
            "effect": {k: json_number(v) for k, v in t.effect.items()}, "region": None}
           for t in hits]
    unit = verdict.inputs.band_unit
    out += [{"name": r.name, "kind": "region", "test": f"welch-t per band ({r.basis}), BH",
             "p_value": json_number(r.p_adjusted), "statistic": json_number(r.max_abs_t), "drifted": True,
             "effect": {"mean_difference": json_number(r.mean_difference), "n_bands": r.n_bands},
             "region": {"start": r.start, "end": r.end, "unit": unit}}
            for r in verdict.regions]
    out.sort(key=lambda f: (not f["drifted"], f["p_value"] if f["p_value"] is not None else 1.0))
    return out[:limit]


def live_drift_for(loaded, settings, metrics) -> LiveDrift:
    """The live drift state of a freshly loaded model (``LoadedModel``, ``Settings``, ``ServiceMetrics``)."""
    info = loaded.info
    labels = LiveTrafficMetrics(metrics.registry, info.name or "", info.version or "", settings.slot or "")
    params = DriftParams(alpha=settings.drift_alpha, min_rows=settings.drift_min_rows)
    source = f"{info.name or 'the model'} version {info.version}" if info.version else (info.name or "the model")
    return LiveDrift(loaded.calibration, loaded.bands, settings.drift_window, params, labels, source)


async def check_on_schedule(get_drift, interval: float) -> None:
    """Every ``interval`` seconds, check the served model's window (``get_drift()``: None until loaded)."""
    while True:
        await asyncio.sleep(interval)
        drift = get_drift()
        if drift is None:
            continue
        try:
            await drift.check()
        except Exception:  # a failing check must not end the schedule; the next one retries
            log.exception("live drift check failed")
