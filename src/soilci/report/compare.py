"""Base against PR: each metric's change, and whether the RMSE change is real (a paired bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20250101
CONFIDENCE = 0.95
MIN_PAIRS = 10  # fewer paired benchmark samples cannot say whether a change is real
# Size words for an RMSE change, relative to the base RMSE (docs/SOP.md states them): "slightly" below
# SLIGHT_MAX, "clearly" from it on. Whether a change is real is the bootstrap's call, not the size's.
SLIGHT_MAX = 0.05
# RPD classes of Chang et al. (2001), Soil Sci. Soc. Am. J. 65:480-490: > 2.0 accurate, 1.4-2.0 fair, < 1.4 poor.
RPD_ACCURATE, RPD_FAIR = 2.0, 1.4


def size_word(relative: float) -> str:
    """``slightly`` when |relative| < SLIGHT_MAX, else ``clearly``."""
    return "slightly" if abs(relative) < SLIGHT_MAX else "clearly"


def rpd_class(rpd: float) -> str:
    """Chang et al. (2001)'s class of an RPD: ``accurate`` (> 2.0), ``fair`` (1.4-2.0) or ``poor`` (< 1.4)."""
    if rpd > RPD_ACCURATE:
        return "accurate"
    return "fair" if rpd >= RPD_FAIR else "poor"


@dataclass(frozen=True)
class MetricSpec:
    key: str  # as in metrics.json
    label: str
    better: str  # "lower", "higher", "zero" (closest to zero) or "nominal" (closest to ``nominal``)
    nominal: float | None = None


# Order of the metrics table; RMSE first because the verdict is decided on it.
METRICS = (
    MetricSpec("rmse", "RMSE", "lower"),
    MetricSpec("r2", "R²", "higher"),
    MetricSpec("rpd", "RPD", "higher"),
    MetricSpec("rpiq", "RPIQ", "higher"),
    MetricSpec("mae", "MAE", "lower"),
    MetricSpec("bias", "Bias", "zero"),
    # Serving's context on the benchmark (evaluate: domain.json's 90% interval and T2/Q flag).
    MetricSpec("interval_coverage", "90% interval coverage", "nominal", nominal=0.9),
    MetricSpec("out_of_domain_rate", "Out of domain", "lower"),
)
COUNTS = (("n_benchmark", "benchmark samples"), ("n_train", "training samples"), ("n_dropped", "dropped rows"))


@dataclass(frozen=True)
class MetricChange:
    """One metric on both sides; ``base``/``pr`` are None where that side has no value."""

    spec: MetricSpec
    base: float | None
    pr: float | None

    @property
    def delta(self) -> float | None:
        """PR - base, in the metric's unit; None unless both sides have a value."""
        return None if self.base is None or self.pr is None else self.pr - self.base

    @property
    def relative(self) -> float | None:
        """``delta`` as a fraction of |base|; None for bias (judged by its distance to 0) or a zero base."""
        if self.delta is None or not self.base or self.spec.better in ("zero", "nominal"):
            return None
        return self.delta / abs(self.base)

    @property
    def mark(self) -> str:
        """``better``, ``worse``, ``same`` (within 1e-9 relative), or ``""`` when a side is missing."""
        if self.delta is None:
            return ""
        if abs(self.delta) <= 1e-9 * max(1.0, abs(self.base)):
            return "same"
        if self.spec.better in ("zero", "nominal"):
            aim = self.spec.nominal or 0.0
            better = abs(self.pr - aim) < abs(self.base - aim)
        else:
            better = (self.delta < 0) == (self.spec.better == "lower")
        return "better" if better else "worse"


def metric_changes(base: dict[str, float], pr: dict[str, float]) -> list[MetricChange]:
    """The metrics of ``METRICS`` either side has, in table order."""
    changes = [MetricChange(spec, base.get(spec.key), pr.get(spec.key)) for spec in METRICS]
    return [c for c in changes if c.base is not None or c.pr is not None]


@dataclass(frozen=True)
class RmseDifference:
    """RMSE(PR) - RMSE(base) on the paired benchmark samples, with its bootstrap interval (target's unit)."""

    n_pairs: int
    rmse_base: float
    rmse_pr: float
    low: float
    high: float
    resamples: int
    seed: int
    confidence: float

    @property
    def delta(self) -> float:
        return self.rmse_pr - self.rmse_base

    @property
    def relative(self) -> float:
        """``delta`` as a fraction of the base RMSE (0 when that is 0)."""
        return self.delta / self.rmse_base if self.rmse_base else 0.0

    @property
    def finding(self) -> str:
        """``improvement`` or ``degradation`` when the interval excludes 0; else ``no change`` / ``noise``.

        ``too few samples`` below ``MIN_PAIRS`` pairs.
        """
        if self.n_pairs < MIN_PAIRS:
            return "too few samples"
        if self.low == self.high == 0.0:
            return "no change"
        if self.high < 0:
            return "improvement"
        if self.low > 0:
            return "degradation"
        return "noise"


def bootstrap_rmse_difference(
    base: pd.DataFrame,
    pr: pd.DataFrame,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> RmseDifference | None:
    """Percentile interval of RMSE(PR) - RMSE(base), resampling benchmark samples (paired on sample_id).

    Args:
        base, pr: predictions with ``sample_id`` and ``error`` columns (see ``inputs.parse_predictions``).

    Returns:
        None when the two share no sample_id; identical errors give the interval [0, 0].
    """
    paired = base[["sample_id", "error"]].merge(pr[["sample_id", "error"]], on="sample_id", suffixes=("_b", "_p"))
    n = len(paired)
    if n == 0:
        return None
    sq_base = paired["error_b"].to_numpy(float) ** 2
    sq_pr = paired["error_p"].to_numpy(float) ** 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    deltas = np.sqrt(sq_pr[idx].mean(axis=1)) - np.sqrt(sq_base[idx].mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    if np.array_equal(sq_base, sq_pr):
        low = high = 0.0
    return RmseDifference(
        n_pairs=n,
        rmse_base=float(np.sqrt(sq_base.mean())),
        rmse_pr=float(np.sqrt(sq_pr.mean())),
        low=float(low),
        high=float(high),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )
