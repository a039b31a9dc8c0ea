"""From the library and the base listing to the stage inputs: what the branch adds, what is trained on.

- **candidate** (the drift gate's new data): batches absent at the base, or replaced since (a replaced
  batch's new content is tested against the batches the branch leaves unchanged; when none is left,
  the reference is empty and the drift gate says so: ``no_reference``).
- **reference** (the drift gate's trusted data): batches unchanged since the base.
- **training**: every batch on the branch, without rows waiting for a lab value (counted).
  Benchmark samples never enter.

All three hold each sample once. Identity is the spectrum: rows within ``library.duplicate_rms`` of
each other are copies of one sample. The drift gate gets the first copy (base batches first), so a
spectrum the base already has stays in the reference and is not new; training gets the first copy that
has a lab value, so a labelled copy sent later (another batch, or later in the same batch) fills a
pending one. Every other copy is a duplicate, counted in its batch (rows = duplicates + pending +
trained) and listed; two labelled copies with different values are a ``conflict``: the first is
trained on, the other listed with both values. training = reference + candidate - pending rows.
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
    duplicates: int = 0  # rows whose spectrum another row kept for training has
    trained: int = 0
    filled: int = 0  # of the duplicates: pending rows whose lab value another copy brings (it is trained on)
    conflicts: int = 0  # of the duplicates: rows whose lab value differs from the kept copy's (not trained on)
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
    # One de-duplicated set for every stage (docs/LIBRARY.md): a group of copies of one spectrum gives the
    # drift gate its first copy in the order above (batches unchanged since the base, then replaced, then
    # added, each by id), and training its first copy that has a lab value (the first copy when none has):
    # a labelled copy fills a pending one wherever it comes. The other copies are counted as duplicates.
    gate, group = _duplicate_groups(everything, spectra, spec.duplicate_rms)
    values = everything[target].to_numpy(np.float64)
    labelled = ~np.isnan(values)
    keep, dups = _training_copies(everything, group, values, spectra)
    training = everything[keep & labelled].reset_index(drop=True)
    for st in statuses:
        mine = (everything[BATCH_COLUMN] == st.id).to_numpy()
        st.duplicates = int((mine & ~keep).sum())
        st.pending = int((mine & keep & ~labelled).sum())  # rows = duplicates + pending + trained
        st.trained = int((mine & keep & labelled).sum())
        st.filled = sum(1 for d in dups if d["batch"] == st.id and d["kind"] == "filled")
        st.conflicts = sum(1 for d in dups if d["batch"] == st.id and d["kind"] == "conflict")
    from_reference = np.arange(len(everything)) < sum(len(r) for r in reference)
    return Assembled(
        reference=everything[gate & from_reference].reset_index(drop=True),
        candidate=everything[gate & ~from_reference].reset_index(drop=True),
        training=training, benchmark=bench, batches=statuses, duplicates=dups,
        benchmark_changed=base.benchmark_sha256 not in (None, benchmark.meta.content_sha256),
    )


def _duplicate_groups(frame: pd.DataFrame, spectra: np.ndarray, threshold: float,
                      chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The first copy of each spectrum, and each row's group (the row index of that first copy).

    A row within ``threshold`` (RMS over the bands) of an earlier first copy joins the nearest such
    copy's group; otherwise it starts its own. Returns (mask of first copies, group index per row).
    """
    group = np.arange(len(frame))
    first = np.ones(len(frame), bool)
    for start in range(0, len(frame), chunk):
        stop = min(start + chunk, len(frame))
        d = rms_distances(spectra[start:stop], spectra[:stop])
        for row, i in enumerate(range(start, stop)):
            close = np.flatnonzero((d[row, :i] < threshold) & first[:i])
            if close.size:
                group[i] = int(close[np.argmin(d[row, close])])
                first[i] = False
    return first, group


# Two lab values of one sample that differ by more than this (relative, plus a floor for values near 0)
# are a conflict; closer ones are the same value written with different rounding.
VALUE_RTOL, VALUE_ATOL = 1e-6, 1e-9


def _training_copies(frame: pd.DataFrame, group: np.ndarray, values: np.ndarray,
                     spectra: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Per group of copies, the copy training keeps: the first with a lab value, else the first.

    Returns the mask of kept rows and one record per other copy: ``sample``/``batch`` (the dropped copy),
    ``of``/``of_batch`` (the kept one), ``rms`` (their spectral distance) and ``kind``: ``duplicate``,
    ``filled`` (the dropped copy was pending and the kept one brings the lab value) or ``conflict`` (both
    have a lab value and they differ: the kept copy's value is trained on, ``value``/``of_value`` say both).
    """
    ids, owner = frame[SAMPLE_ID].to_numpy(), frame[BATCH_COLUMN].to_numpy()
    labelled = ~np.isnan(values)
    chosen = {}  # group -> kept row
    for i in range(len(frame)):
        g = int(group[i])
        if g not in chosen or (labelled[i] and not labelled[chosen[g]]):
            chosen[g] = i
    keep = np.zeros(len(frame), bool)
    keep[list(chosen.values())] = True
    dups: list[dict] = []
    for i in np.flatnonzero(~keep):
        j = chosen[int(group[i])]
        rms = float(rms_distances(spectra[i:i + 1], spectra[j:j + 1])[0, 0])
        entry = {"sample": str(ids[i]), "batch": str(owner[i]), "of": str(ids[j]), "of_batch": str(owner[j]),
                 "rms": round(rms, 6), "kind": "duplicate"}
        if not labelled[i] and labelled[j]:
            entry["kind"] = "filled"
        elif labelled[i] and labelled[j] and not np.isclose(values[i], values[j], rtol=VALUE_RTOL, atol=VALUE_ATOL):
            entry.update(kind="conflict", value=float(values[i]), of_value=float(values[j]))
        dups.append(entry)
    return keep, dups
