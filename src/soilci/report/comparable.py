"""Whether base and PR measure the same thing: the same target, unit and benchmark content."""

from __future__ import annotations

import json
from dataclasses import dataclass

IDENTITY_KEYS = ("target", "unit", "benchmark_sha256")


@dataclass(frozen=True)
class Identity:
    """What a metrics.json's numbers are of (evaluate writes these beside the numbers)."""

    target: str
    unit: str
    benchmark_sha256: str

    @property
    def label(self) -> str:
        """``SOC_target (%)``."""
        return f"{self.target} ({self.unit})"


def parse_identity(text: str | None) -> Identity | None:
    """The target, unit and benchmark hash of a metrics.json; None when it lacks any (an older file)."""
    if not text:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in IDENTITY_KEYS):
        return None
    return Identity(raw["target"], raw["unit"], raw["benchmark_sha256"])


def incomparability(base: Identity | None, pr: Identity | None, *, base_has_metrics: bool) -> str | None:
    """Why base and PR numbers must not be compared (a headline clause), or None when they may be.

    No base metrics at all is not this: it is a first run (nothing to compare).
    """
    if not base_has_metrics:
        return None
    if base is None:
        return "the base predates target/benchmark tracking"
    if pr is None:
        return "the PR's metrics do not name their target and benchmark"
    if (base.target, base.unit) != (pr.target, pr.unit):
        return f"target changed: {base.label} → {pr.label}"
    if base.benchmark_sha256 != pr.benchmark_sha256:
        return f"benchmark set changed: sha256 {base.benchmark_sha256[:8]} → {pr.benchmark_sha256[:8]}"
    return None
