"""Batches on disk: write one all-or-nothing, read one back validated, list the library."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from soil_contracts.bands import is_band
from soil_contracts.errors import ContractError
from soil_contracts.library import (
    BATCH_FILE,
    BATCHES_DIR,
    SAMPLE_ID,
    SPECTRA_FILE,
    BatchMetadata,
    LibrarySpec,
    dvc_pointer_mismatch,
    incomplete_batches,
)
from soil_trainer.errors import DataError
from soil_trainer.library.content import content_sha256
from soil_trainer.library.schema import validate_batch


@dataclass(frozen=True)
class Batch:
    """One batch: its metadata and its canonical table (sample_id, targets, bands)."""

    meta: BatchMetadata
    frame: pd.DataFrame
    path: Path

    @property
    def spectra(self) -> np.ndarray:
        """(n, p) band values."""
        return self.frame.drop(columns=[SAMPLE_ID, *self.meta.targets]).to_numpy(dtype=np.float64)


def write_batch(directory: Path, meta: BatchMetadata, frame: pd.DataFrame) -> Path:
    """Write ``spectra.parquet`` and ``batch.yaml`` into ``directory`` together, or nothing.

    Raises:
        DataError: ``directory`` exists already (replacing a batch is an explicit ``--replace``).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        frame.to_parquet(staging / SPECTRA_FILE, index=False, compression="zstd")
        meta.save(staging / BATCH_FILE)
        os.chmod(staging, 0o755)
        if directory.exists():
            # Keep what else lives beside the batch (DVC's .dvc and .gitignore files).
            for other in directory.iterdir():
                if other.name not in (SPECTRA_FILE, BATCH_FILE) and other.is_file():
                    shutil.copy2(other, staging / other.name)
            old = directory.with_name(f".{directory.name}.old")
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def read_batch(directory: Path, spec: LibrarySpec) -> Batch:
    """Read and validate one batch against its metadata and the canonical form.

    Raises:
        DataError: metadata invalid, spectra missing (run ``dvc pull``) or not the version the batch's
            ``spectra.parquet.dvc`` names (run ``dvc checkout``), columns of another import or another grid,
            not canonical, or its content hash differs from the metadata's (changed without re-import).
    """
    directory = Path(directory)
    try:
        meta = BatchMetadata.load(directory / BATCH_FILE)
    except ContractError as exc:
        raise DataError(str(exc)) from None
    if meta.id != directory.name and directory.parent.name == BATCHES_DIR:
        raise DataError(f"{directory / BATCH_FILE}: id {meta.id!r} differs from the folder name {directory.name!r}")
    if meta.axis is not spec.axis or meta.scale is not spec.scale:
        raise DataError(f"{directory / BATCH_FILE}: stored as {meta.axis.value}/{meta.scale.value}, the library is "
                        f"{spec.axis.value}/{spec.scale.value}; re-import the batch")
    path = directory / SPECTRA_FILE
    if not path.exists():
        # A fresh clone whose DVC remote never received the demo's spectra: no pull can bring them.
        rebuild = ("; or, for the demo library (LimeSoDa), rebuild it with 'soilci library demo'"
                   if meta.source.file.startswith("limesoda:") else "")
        raise DataError(f"{path}: missing; fetch it with 'dvc pull' (or 'dvc checkout'){rebuild}")
    if mismatch := dvc_pointer_mismatch(path):
        raise DataError(mismatch)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    _check_columns(frame, meta, spec, path)
    frame = validate_batch(frame, spec.grid.columns(spec.axis), list(meta.targets), str(path))
    if len(frame) != meta.rows:
        raise DataError(f"{path}: {len(frame)} rows, the metadata says {meta.rows}")
    if content_sha256(frame) != meta.content_sha256:
        raise DataError(f"{path}: content differs from {BATCH_FILE}'s content_sha256; "
                        "batches change only by re-import (soilci library import --replace)")
    return Batch(meta=meta, frame=frame, path=directory)


def _check_columns(frame: pd.DataFrame, meta: BatchMetadata, spec: LibrarySpec, path: Path) -> None:
    """Say which of the two sources of the expected columns the file disagrees with: its batch.yaml (sample_id,
    targets: the two files are of different imports) or params.yaml library.grid (the bands)."""
    columns = [str(c) for c in frame.columns]
    targets = [SAMPLE_ID, *meta.targets]
    held = [c for c in columns if not is_band(c)]
    if held != targets:
        raise DataError(f"{path}: its columns {held} are not those of {BATCH_FILE} next to it ({targets}): the two "
                        "files are of different imports (after a branch switch, 'dvc checkout' brings this "
                        "branch's spectra; else re-import the batch with --replace)")
    bands, grid = [c for c in columns if is_band(c)], spec.grid.columns(spec.axis)
    if bands != grid and bands and columns[:len(targets)] == targets:
        raise DataError(f"{path}: its {len(bands)} bands ({bands[0]}-{bands[-1]}) are not the {len(grid)} of "
                        f"params.yaml library.grid ({grid[0]}-{grid[-1]}, step {spec.grid.step:g} "
                        f"{spec.axis.unit}): it was imported on another grid (another branch's params.yaml?); "
                        "re-import it with --replace, or keep the grid it was imported on")


def list_batch_dirs(root: Path, spec: LibrarySpec) -> list[Path]:
    """The library's batch folders, sorted by name.

    Raises:
        DataError: an entry of ``batches/`` is not a complete batch (``soil_contracts.library.incomplete_batches``
            names each, what it lacks and how to fix it): it is never skipped.
    """
    base = Path(root) / spec.path / BATCHES_DIR
    if not base.is_dir():
        return []
    if problems := incomplete_batches(root, spec):
        raise DataError(f"{spec.path}/{BATCHES_DIR} holds {len(problems)} entr{'y' if len(problems) == 1 else 'ies'} "
                        "that no run would read (a batch is never skipped): " + "; ".join(problems))
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / BATCH_FILE).exists())
