"""``soilci library import``: a source file -> a validated, canonical library batch (or the benchmark)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from soil_contracts.bands import SpectralAxis
from soil_contracts.library import SAMPLE_ID, BatchMetadata, LibrarySpec, Scale, SourceFile, holds_files
from soil_contracts.units import unit_range
from soil_trainer.errors import DataError
from soil_trainer.library.content import Duplicate, content_sha256, find_duplicates
from soil_trainer.library.formats import RawSpectra, read_source
from soil_trainer.library.normalize import (
    check_sampling,
    check_scale,
    check_visible_slope,
    convert_axis,
    convert_scale,
    half_ulp,
    resample,
)
from soil_trainer.library.schema import MAX_LISTED, validate_batch
from soil_trainer.library.store import Batch, list_batch_dirs, read_batch, write_batch


@dataclass(frozen=True)
class BatchRequest:
    """What the user says about a source file (the metadata that the file cannot carry)."""

    source: str
    batch_id: str
    instrument: str
    lab: str
    date: str
    axis: SpectralAxis | None
    scale: Scale | None
    targets: dict[str, str]  # column -> unit
    id_column: str = SAMPLE_ID
    description: str = ""
    folds: list[int] | None = None


@dataclass
class ImportResult:
    """The written batch, and what was noticed on the way."""

    batch: Batch
    duplicates_in_library: list[Duplicate] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def canonical_frame(raw: RawSpectra, req: BatchRequest, spec: LibrarySpec) -> pd.DataFrame:
    """Axis, scale and grid normalisation of ``raw`` into the canonical table (validated)."""
    axis = raw.axis or req.axis
    if axis is None:
        raise DataError(f"{raw.source}: numeric band headers do not say the axis; give --axis")
    if req.axis is not None and raw.axis is not None and req.axis is not raw.axis:
        raise DataError(f"{raw.source}: --axis {req.axis.value}, but the columns are {raw.axis.value}")
    scale = req.scale or raw.scale_hint
    if scale is None:
        raise DataError(f"{raw.source}: give --scale (reflectance_fraction, reflectance_percent or absorbance)")
    if raw.scale_hint is not None and scale is not raw.scale_hint:
        raise DataError(f"{raw.source}: --scale {scale.value}, but the OSSL columns are {raw.scale_hint.value}")
    # The shape first: reflectance and absorbance overlap in range, so only it names the scale they are.
    check_visible_slope(raw.values, convert_axis(raw.positions, axis, SpectralAxis.WAVELENGTH_NM), scale, raw.ids,
                        raw.source)
    check_scale(raw.values, scale, raw.ids, raw.source)
    values = convert_scale(raw.values, scale, spec.scale)
    check_sampling(raw.positions, axis, spec.grid, spec.axis, raw.decimals, raw.source)
    positions = convert_axis(raw.positions, axis, spec.axis)
    precision = float(half_ulp(raw.positions, axis, spec.axis, raw.decimals).max())
    canonical = resample(positions, values, spec.grid, raw.source, tolerance=precision, unit=spec.axis.unit)
    bands = spec.grid.columns(spec.axis)
    frame = pd.concat(
        [pd.DataFrame({SAMPLE_ID: raw.ids.astype(str)}),
         raw.targets.reset_index(drop=True).astype(np.float64),
         pd.DataFrame(canonical, columns=bands)],
        axis=1,
    )
    return validate_batch(frame, bands, list(req.targets), raw.source)


def check_target_ranges(frame: pd.DataFrame, targets: dict[str, str],
                        where: str) -> dict[str, tuple[float, float | None] | None]:
    """Refuse target values outside what their unit allows (``soil_contracts.units``); empty values pass.

    Args:
        frame: the canonical table (``sample_id``, the targets, the bands), rows in file order.
        targets: target column -> unit, as declared at import.

    Returns:
        Per target, the range its values were checked against, or None when the unit has no declared
        range (its values were not checked): what ``batch.yaml`` records as ``target_ranges``.

    Raises:
        DataError: some values are impossible for their unit; names up to five samples per target with
            their rows (counted from 1 below the header) and values, and the count.
    """
    checked: dict[str, tuple[float, float | None] | None] = {}
    problems, count = [], 0
    for column, unit in targets.items():
        limits = unit_range(unit)
        checked[column] = None if limits is None else (limits.low, limits.high)
        if limits is None:
            continue
        values = frame[column].to_numpy(dtype=np.float64)
        high = np.inf if limits.high is None else limits.high
        bad = np.flatnonzero(~np.isnan(values) & ((values < limits.low) | (values > high)))
        if not len(bad):
            continue
        count += len(bad)
        named = ", ".join(f"{frame[SAMPLE_ID].iloc[i]} (row {i + 1}) = {values[i]:g}" for i in bad[:MAX_LISTED])
        more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        problems.append(f"{column} in {unit!r} ({limits.quantity}) must be {limits.describe()}: {named}{more}")
    if problems:
        raise DataError(f"{where}: {count} target value(s) impossible for their unit: " + "; ".join(problems)
                        + ". Fix the values, or declare the unit they are in (--target COLUMN=UNIT); "
                        "leave a cell empty for a lab value still pending")
    return checked


def _sha256(source: str) -> str | None:
    path = Path(source)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _read_other(directory: Path, spec: LibrarySpec, source: str) -> Batch:
    """A batch already in the library, read to find the new samples' duplicates; its errors say whose they are."""
    try:
        return read_batch(directory, spec)
    except DataError as exc:
        raise DataError(f"{source} was not imported: the library's batch {directory.name!r}, read to find duplicates "
                        f"of the new samples, is refused itself (fix it first): {exc}") from None


def import_batch(req: BatchRequest, spec: LibrarySpec, root: Path, *, benchmark: bool = False,
                 replace: bool = False) -> ImportResult:
    """Read, normalise, check against the library and write one batch (or the benchmark set).

    Raises:
        DataError: bad source (see ``read_source``), a target value impossible for its unit
            (``check_target_ranges``), a sample that duplicates a benchmark sample
            (named), the batch exists and ``replace`` is False, or nothing to import.
    """
    raw = read_source(req.source, id_column=req.id_column, targets=list(req.targets), folds=req.folds)
    frame = canonical_frame(raw, req, spec)
    ranges = check_target_ranges(frame, req.targets, req.source)
    target = spec.benchmark_dir(root) if benchmark else spec.batch_dir(root, req.batch_id)
    if target.exists() and holds_files(target) and not replace:  # an emptied folder is no batch
        raise DataError(f"{target}: exists; replacing a batch is explicit (--replace) and shows in the report")
    new = frame[spec.grid.columns(spec.axis)].to_numpy(np.float64)
    result_dups: list[Duplicate] = []
    if not benchmark and spec.benchmark_dir(root).exists():
        bench = _read_other(spec.benchmark_dir(root), spec, req.source)
        leaks = find_duplicates(frame[SAMPLE_ID].to_numpy(), new, bench.frame[SAMPLE_ID].to_numpy(),
                                bench.spectra, np.full(len(bench.frame), "benchmark"), spec.duplicate_rms)
        if leaks:
            named = ", ".join(f"{d.sample} = {d.of} (rms {d.rms:.3g})" for d in leaks[:5])
            raise DataError(f"{req.source}: {len(leaks)} sample(s) duplicate benchmark samples ({named}); "
                            "the benchmark must stay unseen: remove them from the batch")
    if not benchmark:
        others = [_read_other(d, spec, req.source) for d in list_batch_dirs(root, spec) if d.name != req.batch_id]
        if others:
            old = np.vstack([b.spectra for b in others])
            ids = np.concatenate([b.frame[SAMPLE_ID].to_numpy() for b in others])
            owner = np.concatenate([np.full(len(b.frame), b.meta.id) for b in others])
            result_dups = find_duplicates(frame[SAMPLE_ID].to_numpy(), new, ids, old, owner, spec.duplicate_rms)
    meta = BatchMetadata(
        id="benchmark" if benchmark else req.batch_id,
        instrument=req.instrument, lab=req.lab, date=req.date, description=req.description,
        axis=spec.axis, scale=spec.scale, targets=req.targets, rows=len(frame),
        pending={t: int(frame[t].isna().sum()) for t in req.targets},
        target_ranges=ranges,
        content_sha256=content_sha256(frame),
        source=SourceFile(
            file=req.source if raw.format == "limesoda" else Path(req.source).name, sha256=_sha256(req.source),
            format=f"{raw.format}/{raw.style}", axis=raw.axis or req.axis, scale=req.scale or raw.scale_hint,
            bands=len(raw.positions), first=float(raw.positions[0]), last=float(raw.positions[-1]),
        ),
    )
    path = write_batch(target, meta, frame)
    return ImportResult(Batch(meta=meta, frame=frame, path=path), result_dups, raw.ignored)
