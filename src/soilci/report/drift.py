"""The drift gate's result in the working tree (reports/drift.json and its plot), as the report shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from soilci.errors import ConfigError
from soilci.report.attribution import attribute, effects_first

DRIFT_PATH = "reports/drift.json"
DRIFT_PLOT_PATH = "reports/drift.png"
DRIFT_WORDS = {"pass": "Passed", "warn": "Warning", "fail": "Failed", "no_candidate": "No new samples",
               "no_reference": "No reference yet"}


@dataclass(frozen=True)
class DriftResult:
    """The drift gate's outcome (reports/drift.json) as the report shows it."""

    status: str | None  # "pass" | "warn" | "fail" | "no_candidate" | "no_reference" | None (not run)
    summary: str
    method: str | None
    alpha: float | None
    top: list[dict]  # spectral effects first, then most drifted first: name, kind, statistic, p_value
    plot: Path | None
    attribution: str = ""  # "baseline offset across 350-2495 nm, then PC1" (attribution.attribute)
    accepted: tuple[dict, ...] = ()  # candidate batches whose drift a lead accepted: batch, rows, reason, by
    others: dict | None = None  # the batches without acceptance: batches, rows, result ("drift", "no drift", ...)
    replaced_base: str = ""  # no_reference although the base has batches: those the branch replaced or removed
    filled: str = ""  # no_candidate although the branch brings lab values for pending samples (changes.filled_by_branch)

    @property
    def accepted_text(self) -> str:
        """``lab-o (46 rows), accepted by lead@x: "new instrument"``, one item per accepted batch; "" if none."""
        return "; ".join(f"{a.get('batch')} ({a.get('rows')} rows), accepted by {a.get('by')}: \"{a.get('reason')}\""
                         for a in self.accepted)

    @property
    def unaccepted_drift(self) -> str:
        """The batches without acceptance that keep the gate failing (``lab-x``), or ""."""
        if self.status != "fail" or not self.others or self.others.get("result") not in {"drift", "too few rows"}:
            return ""
        return ", ".join(self.others.get("batches") or [])

    @property
    def unaccepted_result(self) -> str:
        """What the gate found for the batches without acceptance: ``drift``, ``no drift``, ``too few rows``
        (fewer than ``drift.min_rows``: not tested on their own) or "" (not tested)."""
        return str((self.others or {}).get("result") or "")

    @property
    def other_batches(self) -> str:
        """The new batches without acceptance and their rows (``lab-b (23 rows)``), or "" when there are none."""
        if not self.others or not self.others.get("batches"):
            return ""
        return f"{', '.join(self.others['batches'])} ({self.others.get('rows')} rows)"

    @property
    def word(self) -> str:
        """``Passed``, ``Warning``, ``Failed``, ``No new samples`` (``No new spectra`` when the branch brings lab
        values for pending samples), ``No reference yet`` (``No unchanged reference`` when the branch replaced or
        removed the base's batches) or ``Not run``."""
        if self.status == "no_reference" and self.replaced_base:
            return "No unchanged reference"
        if self.status == "no_candidate" and self.filled:
            return "No new spectra"
        return DRIFT_WORDS.get(self.status or "", "Not run")

    @property
    def badge(self) -> str:
        return f"Data Drift Check: {self.word}"


def read_drift(repo: Path) -> DriftResult:
    """The working tree's drift result; status None when the gate did not run (no drift.json).

    Raises:
        ConfigError: drift.json is not JSON or its status is not one of DRIFT_WORDS.
    """
    path = repo / DRIFT_PATH
    plot = repo / DRIFT_PLOT_PATH
    if not path.exists():
        return DriftResult(None, "The drift gate did not run.", None, None, [], None)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    status = raw.get("status")
    if status not in DRIFT_WORDS:
        raise ConfigError(f"{path}: status must be one of {', '.join(DRIFT_WORDS)}, got {status!r}")
    return DriftResult(
        status=status,
        summary=str(raw.get("summary", "")),
        method=raw.get("method"),
        alpha=raw.get("alpha"),
        top=effects_first([t for t in raw.get("top_drifted") or [] if isinstance(t, dict)]),
        plot=plot if plot.exists() else None,
        attribution=attribute(raw) if status in {"fail", "warn"} else "",
        accepted=tuple(a for a in (raw.get("acceptance") or {}).get("accepted") or [] if isinstance(a, dict)),
        others=(raw.get("acceptance") or {}).get("others"),
    )
