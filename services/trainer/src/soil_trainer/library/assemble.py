"""From the library and the base listing to the stage inputs: what the branch adds, what is trained on.

- **candidate** (the drift gate's new data): batches absent at the base, or replaced since.
- **reference** (the drift gate's trusted data): batches unchanged since the base.
- **training**: every batch on the branch, without rows waiting for a lab value (counted).
  Benchmark samples never enter.

All three hold each sample once: a spectrum within ``library.duplicate_rms`` of an earlier one (base
batches first) is a duplicate, reported and dropped from all of them, so training = reference +
candidate - pending rows, and a batch imported twice tests and trains like one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from soil_contracts.library import SAMPLE_ID, BaseLibrary, LibrarySpec
from soil_trainer.errors import DataError
from soil_trainer.library.content import find_duplicates, rms_distances
from soil_trainer.library.store import Batch

BATCH_COLUMN = "batch"


@dataclass
class BatchStatus:
    """One batch's place in this run, for the report's data diff."""

    id: str
    status: str  # unchanged | added | replaced | removed
    rows: int = 0  # = duplicates + pending + trained
    pending: int = 0  # kept rows waiting for a lab value
    duplicates: int = 0  # rows whose spectrum an earlier sample already has
    trained: int = 0
    instrument: str = ""
    accepted_drift: str | None = None  # the recorded reason, when a lead accepted this batch's drift
    accepted_by: str | None = None  # who accepted it


@dataclass
class Assembled:
    """The stage inputs (frames: sample_id, batch, target, bands) and the data diff."""

    reference: pd.DataFrame
    candidate: pd.DataFrame
    training: pd.DataFrame
    benchmark: pd.DataFrame
    batches: list[BatchStatus] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    benchmark_changed: bool = False


def _rows(batch: Batch, target: str, bands: list[str]) -> pd.DataFrame:
    frame = batch.frame[[SAMPLE_ID, target, *bands]].copy()
    frame.insert(1, BATCH_COLUMN, batch.meta.id)
    return frame


def check_target(batch: Batch, target: str, unit: str) -> None:
    """Refuse a batch without ``target`` or that declares it in another unit."""
    declared = batch.meta.targets.get(target)
    if declared is None:
        raise DataError(f"{batch.path}/batch.yaml: no target {target!r} (it has {', '.join(batch.meta.targets)}); "
                        "the model's target comes from params.yaml prepare.target")
    if declared.strip() != unit.strip():
        raise DataError(f"{batch.path}/batch.yaml: {target} is in {declared!r}, params.yaml prepare.unit says "
                        f"{unit!r}; convert the values or fix the declared unit")


def assemble(batches: list[Batch], benchmark: Batch, base: BaseLibrary, spec: LibrarySpec,
             target: str, unit: str) -> Assembled:
    """Split the library into reference, candidate, training and benchmark rows.

    Raises:
        DataError: a batch lacks the target or declares another unit; a training sample duplicates
            a benchmark sample (the benchmark must stay unseen).
    """
    bands = spec.grid.columns(spec.axis)
    for batch in [benchmark, *batches]:
        check_target(batch, target, unit)
    ordered = sorted(batches, key=lambda b: (b.meta.id not in base.batches, b.meta.id))  # base batches first
    statuses, reference, candidate = [], [], []
    for batch in ordered:
        at_base = base.batches.get(batch.meta.id)
        status = "added" if at_base is None else "unchanged" if at_base == batch.meta.content_sha256 else "replaced"
        rows = _rows(batch, target, bands)
        (reference if status == "unchanged" else candidate).append(rows)
        acceptance = batch.meta.drift_acceptance
        statuses.append(BatchStatus(
            id=batch.meta.id, status=status, rows=len(rows),
            instrument=batch.meta.instrument, accepted_drift=acceptance.reason if acceptance else None,
            accepted_by=acceptance.by if acceptance else None,
        ))
    present = {b.meta.id for b in batches}
    statuses += [BatchStatus(id=i, status="removed") for i in sorted(set(base.batches) - present)]

    empty = pd.DataFrame(columns=[SAMPLE_ID, BATCH_COLUMN, target, *bands])
    everything = pd.concat(reference + candidate, ignore_index=True) if reference or candidate else empty
    bench = _rows(benchmark, target, bands)
    spectra = everything[bands].to_numpy(np.float64)
    leaks = find_duplicates(everything[SAMPLE_ID].to_numpy(), spectra, bench[SAMPLE_ID].to_numpy(),
                            bench[bands].to_numpy(np.float64), np.full(len(bench), "benchmark"), spec.duplicate_rms)
    if leaks:
        named = ", ".join(f"{d.sample} = benchmark {d.of}" for d in leaks[:5])
        raise DataError(f"{len(leaks)} library sample(s) duplicate benchmark samples ({named}); remove them")
    # One de-duplicated set for every stage: the first copy of a sample (in the order above: batches
    # unchanged since the base, then replaced, then added, each by id) is kept; its later copies are
    # dropped from the gate's reference and candidate and from training alike (docs/LIBRARY.md).
    keep, dups = _first_occurrences(everything, spectra, spec.duplicate_rms)
    labelled = everything[target].notna().to_numpy()
    training = everything[keep & labelled].reset_index(drop=True)
    for st in statuses:
        mine = (everything[BATCH_COLUMN] == st.id).to_numpy()
        st.duplicates = int((mine & ~keep).sum())
        st.pending = int((mine & keep & ~labelled).sum())  # rows = duplicates + pending + trained
        st.trained = int((mine & keep & labelled).sum())
    from_reference = np.arange(len(everything)) < sum(len(r) for r in reference)
    return Assembled(
        reference=everything[keep & from_reference].reset_index(drop=True),
        candidate=everything[keep & ~from_reference].reset_index(drop=True),
        training=training, benchmark=bench, batches=statuses, duplicates=dups,
        benchmark_changed=base.benchmark_sha256 not in (None, benchmark.meta.content_sha256),
    )


def _first_occurrences(frame: pd.DataFrame, spectra: np.ndarray, threshold: float,
                       chunk: int = 512) -> tuple[np.ndarray, list[dict]]:
    """Mask of rows kept (the first of each group of duplicate spectra, in frame order) and the drops."""
    keep = np.ones(len(frame), bool)
    dups: list[dict] = []
    ids, owner = frame[SAMPLE_ID].to_numpy(), frame[BATCH_COLUMN].to_numpy()
    for start in range(0, len(frame), chunk):
        stop = min(start + chunk, len(frame))
        d = rms_distances(spectra[start:stop], spectra[:stop])
        for row, i in enumerate(range(start, stop)):
            close = np.flatnonzero((d[row, :i] < threshold) & keep[:i])
            if close.size:
                j = int(close[np.argmin(d[row, close])])
                keep[i] = False
                dups.append({"sample": str(ids[i]), "batch": str(owner[i]), "of": str(ids[j]),
                             "of_batch": str(owner[j]), "rms": round(float(d[row, j]), 6)})
    return keep, dups
