"""Per-batch drift acceptance: a lead's recorded decision turns drift into a warning for that batch only.

A batch's ``batch.yaml`` can carry ``drift_acceptance: {reason, by}`` (reviewed in the PR like any
change); prepare copies it into ``data/library.json``. When the pooled candidate drifts, the gate asks
a second question of the rows whose batch carries **no** acceptance: do they drift on their own
(the same tests, the same ``alpha``, against the same reference)? The gate warns only when they do not,
or when every candidate batch is accepted; otherwise it still fails. Batches without acceptance and
fewer than ``drift.min_rows`` rows cannot be cleared on their own, so they fail the gate too: a gate
never passes because something went untested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soil_contracts.errors import ContractError
from soil_contracts.library import LibrarySummary
from soil_drift.config import DriftParams
from soil_drift.errors import DataError
from soil_drift.inputs import IDENTIFIER_COLUMNS, validate_pair
from soil_drift.readers import Table, read_table
from soil_drift.verdict import DriftVerdict

BATCH = IDENTIFIER_COLUMNS[0]


@dataclass(frozen=True)
class Acceptance:
    """One batch's recorded acceptance of its drift (``BatchMetadata.drift_acceptance``)."""

    batch: str
    reason: str
    by: str


def read_acceptances(path: Path) -> dict[str, Acceptance]:
    """Batch id -> acceptance, for the batches of a library summary (``data/library.json``) that carry one.

    Raises:
        DataError: the file is missing or is not a library summary.
    """
    try:
        summary = LibrarySummary.load(path)
    except (ContractError, OSError) as exc:
        raise DataError(f"{path}: cannot read the library summary ({exc})") from exc
    return {b.id: Acceptance(b.id, b.accepted_drift, b.accepted_by or "unknown")
            for b in summary.batches if b.accepted_drift}


def _rows(table: Table, keep: np.ndarray, label: str) -> Table:
    """The rows of ``table`` where ``keep`` is true, as an in-memory table named ``label``."""
    import pandas as pd  # only when accepted batches are re-tested: the gate's Parquet path stays pandas-free

    frame = pd.DataFrame({name: values[keep] for name, values in table.columns(table.names)})
    return Table.from_frame(frame, label)


def settle(verdict: DriftVerdict, reference: Path, candidate: Path, params: DriftParams,
           acceptances: dict[str, Acceptance]) -> DriftVerdict:
    """Apply the candidate batches' acceptances to a verdict (in place; also returned).

    Only a ``fail`` changes: to ``warn`` when the rows of batches without acceptance do not drift on
    their own (or there are none). ``verdict.acceptance`` records the accepted batches (rows, reason,
    by) and, when they were tested, the other batches' own result; the summary says both.
    """
    if not acceptances or not verdict.inputs.n_candidate:
        return verdict
    cand = read_table(candidate, allow_no_rows=True)
    if BATCH not in cand.names:
        return verdict
    batches = np.asarray([str(b) for b in cand.raw(BATCH)], dtype=object)
    accepted = [acceptances[b] for b in sorted(set(batches)) if b in acceptances]
    if not accepted:
        return verdict
    rest = ~np.isin(batches, [a.batch for a in accepted])
    others = sorted(set(batches[rest]))
    record: dict[str, Any] = {
        "accepted": [{"batch": a.batch, "rows": int((batches == a.batch).sum()), "reason": a.reason, "by": a.by}
                     for a in accepted],
        "others": {"batches": others, "rows": int(rest.sum())} if others else None,
    }
    verdict.acceptance = record
    if verdict.status != "fail":
        return verdict
    names = ", ".join(f"{a.batch} (by {a.by}: {a.reason})" for a in accepted)
    if not others:
        verdict.status = "warn"
        verdict.summary = f"Drift accepted for every new batch: {names}. {verdict.summary}"
        return verdict
    listed = f"{', '.join(others)} ({int(rest.sum())} rows)"
    if rest.sum() < params.min_rows:
        record["others"]["result"] = "too few rows"
        verdict.summary = (f"{verdict.summary} Drift is accepted for {names}, but the batches without acceptance, "
                           f"{listed}, are fewer than the {params.min_rows} rows (drift.min_rows) needed to clear "
                           "them on their own.")
        return verdict
    from soil_drift.gate import check_drift

    label = f"{candidate} (batches without acceptance: {', '.join(others)})"
    own = check_drift(validate_pair(read_table(reference), _rows(cand, rest, label), params), params)
    record["others"].update(result="drift" if own.drift_detected else "no drift", summary=own.summary)
    if own.drift_detected:
        verdict.summary = (f"{verdict.summary} Drift is accepted for {names}, but the batches without "
                           f"acceptance, {listed}, drift on their own: {own.summary}")
    else:
        verdict.status = "warn"
        verdict.summary = (f"Drift accepted for {names}; the other new batches, {listed}, show no drift on "
                           f"their own. {verdict.summary}")
    return verdict
