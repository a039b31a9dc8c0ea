"""The spectral library's shared contracts: its canonical form (params) and each batch's metadata.

A library is a folder (``library/`` by default) that a team grows one batch per pull request::

    library/benchmark/batch.yaml          the fixed benchmark set (metadata in git)
    library/benchmark/spectra.parquet     its rows (tracked by DVC: spectra.parquet.dvc in git)
    library/batches/<id>/batch.yaml       one batch of field samples
    library/batches/<id>/spectra.parquet

Every ``spectra.parquet`` is canonical: ``sample_id``, the batch's target columns, then one float
column per band of the canonical grid (``wl_<nm>`` or ``wn_<cm-1>``) in the canonical scale.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soil_contracts._record import Record
from soil_contracts.bands import SpectralAxis, band_name

BATCH_FILE = "batch.yaml"
SPECTRA_FILE = "spectra.parquet"
BENCHMARK_DIR = "benchmark"
BATCHES_DIR = "batches"
SAMPLE_ID = "sample_id"
BATCH_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Scale(StrEnum):
    """The y axis of a spectrum.

    ``absorbance`` is apparent absorbance log10(1/R) with R the reflectance fraction.
    """

    REFLECTANCE_FRACTION = "reflectance_fraction"
    REFLECTANCE_PERCENT = "reflectance_percent"
    ABSORBANCE = "absorbance"


# What a spectrum on each scale looks like (its largest value), to name the scale it is really on.
# Soils reflect 2-80 % of the light in the vis-NIR and MIR; their apparent absorbance stays below ~4.
PLAUSIBLE_MAX: dict[Scale, tuple[float, float]] = {
    Scale.REFLECTANCE_FRACTION: (0.02, 1.2),
    Scale.REFLECTANCE_PERCENT: (2.0, 120.0),
    Scale.ABSORBANCE: (0.05, 6.0),
}
PLAUSIBLE_MIN = -0.5  # below this no scale fits (noise can dip a little under zero)


def likely_scale(row_max: float, row_min: float) -> str:
    """The scale a spectrum with this largest/smallest value most likely is on, in words.

    >>> likely_scale(0.4, 0.03)
    'reflectance fraction (0-1) or absorbance'
    >>> likely_scale(39.0, 2.4)
    'reflectance percent (0-100)'
    """
    if row_min < PLAUSIBLE_MIN:
        return "not a reflectance or absorbance spectrum (negative values)"
    if row_max <= 1.2:
        return "reflectance fraction (0-1) or absorbance"
    if row_max <= 6.0:
        return "absorbance"
    return "reflectance percent (0-100)"


class Grid(BaseModel):
    """An evenly spaced axis grid: ``start``, ``start + step``, ... up to ``stop`` inclusive (nm or cm-1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float
    stop: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Grid:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be above start ({self.start})")
        return self

    def positions(self) -> list[float]:
        """The grid's positions, ascending."""
        n = round((self.stop - self.start) / self.step) + 1
        return [round(self.start + i * self.step, 6) for i in range(n) if self.start + i * self.step <= self.stop + 1e-9]

    def columns(self, axis: SpectralAxis) -> list[str]:
        """The band column names of this grid on ``axis`` (``wl_350``, ``wl_355``, ...)."""
        return [band_name(axis, p) for p in self.positions()]


class LibrarySpec(BaseModel):
    """``params.yaml`` ``library:``: where the library is and the canonical form of every batch in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "library"
    axis: SpectralAxis = SpectralAxis.WAVELENGTH_NM
    grid: Grid
    scale: Scale = Scale.REFLECTANCE_PERCENT
    # Spectra closer than this (root-mean-square difference over the grid, in the canonical scale's
    # units) are the same sample: see docs/LIBRARY.md for how the threshold was chosen.
    duplicate_rms: float = Field(default=0.05, gt=0)

    def batch_dir(self, root: Path, batch_id: str) -> Path:
        return Path(root) / self.path / BATCHES_DIR / batch_id

    def benchmark_dir(self, root: Path) -> Path:
        return Path(root) / self.path / BENCHMARK_DIR


def holds_files(folder: Path) -> bool:
    """``folder`` holds a file (or a link) at any depth; a tree of empty folders holds none."""
    return any(p.is_file() or p.is_symlink() for p in Path(folder).rglob("*"))


def incomplete_batches(root: Path, spec: LibrarySpec) -> list[str]:
    """What is wrong with each entry of ``<library>/batches/`` that is not a complete batch, one line each.

    A batch folder holds ``batch.yaml`` and its spectra (``spectra.parquet``, or the ``spectra.parquet.dvc``
    that ``dvc pull`` fetches it by). Anything else there is refused rather than skipped, because a skipped
    folder is data the run silently ignores, e.g. the untracked ``spectra.parquet`` that ``git checkout`` of a
    branch without the batch leaves behind, which ``git add library`` then commits. Hidden entries left by an
    interrupted import (``.<id>.*``) count too; hidden files (``.gitignore``) do not. A folder with no file at
    any depth holds no data to ignore and is passed over: ``git checkout`` of a branch without a batch, after
    ``dvc checkout``, leaves its emptied folder behind (git tracks files only).

    Returns:
        One sentence per incomplete entry naming the folder, what is missing and how to fix it; [] if none.
    """
    base = Path(root) / spec.path / BATCHES_DIR
    if not base.is_dir():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        rel = f"{spec.path.rstrip('/')}/{BATCHES_DIR}/{entry.name}"
        if entry.is_file():
            if not entry.name.startswith("."):
                found.append(f"{rel}: a file directly under {BATCHES_DIR}/, where only batch folders belong; "
                             "remove it")
            continue
        if entry.name.startswith("."):
            found.append(f"{rel}/: left by an interrupted import (not a batch); remove it (rm -r {rel})")
            continue
        if not holds_files(entry):
            continue
        has_meta = (entry / BATCH_FILE).is_file()
        has_spectra = (entry / SPECTRA_FILE).is_file() or (entry / f"{SPECTRA_FILE}.dvc").is_file()
        if has_meta and has_spectra:
            continue
        held = sorted(p.name for p in entry.iterdir()) if entry.is_dir() else []
        missing = " and ".join(n for n, ok in ((BATCH_FILE, has_meta), (SPECTRA_FILE, has_spectra)) if not ok)
        found.append(f"{rel}/: not a complete batch, {missing} missing (it holds {', '.join(held) or 'nothing'}; "
                     "often left untracked after 'git checkout' of a branch without this batch); remove it "
                     f"(rm -r {rel}; 'git rm -r' if it was committed) or re-import it (soilci library import "
                     f"FILE --batch {entry.name} ...)")
    return found


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # DVC's content address
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dvc_pointer_mismatch(path: Path) -> str | None:
    """Why ``path`` (a batch's ``spectra.parquet``) is not the version its ``<path>.dvc`` names; None if it is
    (or has no ``.dvc`` file).

    git checkout switches ``batch.yaml`` and the ``.dvc`` file but leaves DVC's files as they were, so after a
    branch switch a batch can pair this branch's metadata with another branch's rows. Compared: size, then
    DVC's md5 of the file's bytes (``hash: md5``, DVC 3).
    """
    import yaml

    path = Path(path)
    pointer = path.with_name(path.name + ".dvc")
    if not pointer.is_file() or not path.is_file():
        return None
    try:
        outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
        recorded = next(o for o in outs if o.get("path") == path.name)
    except (yaml.YAMLError, AttributeError, StopIteration):
        return f"{pointer}: not a DVC file naming {path.name}; restore it from git"
    size, md5 = recorded.get("size"), recorded.get("md5")
    if (size is None or path.stat().st_size == size) and (not md5 or _md5(path) == md5):
        return None
    return (f"{path}: not the version {pointer.name} names (md5 {md5}): the spectra are another branch's (git "
            f"checkout leaves DVC's files as they were) or were re-imported without DVC; run 'dvc checkout {path}' "
            f"after switching branches, or 'dvc add {path}' after a --no-dvc import")


class SourceFile(BaseModel):
    """Where a batch came from and what it was before import normalised it."""

    model_config = ConfigDict(extra="forbid")

    file: str  # file name only, or ``limesoda:<dataset>``
    sha256: str | None = None
    format: str  # limesoda | csv | parquet, with the header style (numeric, ossl, limesoda)
    axis: SpectralAxis
    scale: Scale
    bands: int = Field(ge=1)
    first: float  # first and last source band position
    last: float


class DriftAcceptance(BaseModel):
    """A lead's recorded decision to accept this batch's drift (reviewed in the PR like any change).

    ``content_sha256`` is the batch content the lead looked at (``soilci library accept`` copies it from
    the batch): the acceptance holds for that content only, so a batch whose data changes afterwards
    needs a new acceptance.
    """

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3)
    by: str = Field(min_length=1)
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class BatchMetadata(Record):
    """``<batch>/batch.yaml``: what a batch is; validated on every read.

    Attributes:
        id: the batch's folder name.
        instrument, lab, date: free text about the measurement.
        axis, scale: of the stored (canonical) spectra; equal to params' ``library``.
        targets: target column -> unit (``SOC_target: "%"``, ``pH_target: pH``).
        rows: samples in the batch; ``pending``: per target, rows still waiting for a lab value.
        target_ranges: per target, the physical range [low, high] of its unit that every value was
            checked against at import (``soil_contracts.units``; high None: no upper limit); None: the
            unit has no declared range, so the values were not checked. Empty in batches imported
            before the check existed.
        content_sha256: sha256 of the stored spectra and targets (see ``soil_trainer.library``).
        source: the file it was imported from.
        drift_acceptance: set by a lead to accept this batch's drift.
    """

    kind: str = "batch metadata"

    schema_version: int = 1
    id: str = Field(pattern=BATCH_ID_PATTERN)
    instrument: str = Field(min_length=1)
    lab: str = Field(min_length=1)
    date: str = Field(min_length=1)
    description: str = ""
    axis: SpectralAxis
    scale: Scale
    targets: dict[str, str] = Field(min_length=1)
    rows: int = Field(ge=1)
    pending: dict[str, int] = Field(default_factory=dict)
    target_ranges: dict[str, tuple[float, float | None] | None] = Field(default_factory=dict)
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: SourceFile
    drift_acceptance: DriftAcceptance | None = None

    @model_validator(mode="after")
    def _acceptance_is_of_this_content(self) -> BatchMetadata:
        accepted = self.drift_acceptance
        if accepted is not None and accepted.content_sha256 != self.content_sha256:
            raise ValueError(
                f"drift_acceptance was given for content {accepted.content_sha256[:12]}..., the batch is now "
                f"{self.content_sha256[:12]}...; an acceptance does not carry over to new data: review the "
                "batch again and re-accept it (soilci library accept)")
        return self

    @model_validator(mode="after")
    def _ranges_are_of_targets(self) -> BatchMetadata:
        unknown = sorted(set(self.target_ranges) - set(self.targets))
        if unknown:
            raise ValueError(f"target_ranges names {', '.join(unknown)}, not among the targets")
        return self

    @field_validator("targets")
    @classmethod
    def _units_named(cls, value: dict[str, str]) -> dict[str, str]:
        for column, unit in value.items():
            if not str(unit).strip():
                raise ValueError(f"target {column!r} has no unit")
        return value


class BaseLibrary(Record):
    """``.soilci/base.json``: the library as the base revision holds it (written by ``soilci pipeline``).

    ``prepare`` reads it to tell what the branch adds: batches absent at the base are the drift gate's
    candidate; batches unchanged since the base are its reference. A DVC dependency of ``prepare``.
    """

    kind: str = "base library listing"

    # Only content is written to the file, so a new base commit with the same library reruns nothing;
    # ``ref`` and ``commit`` say where a listing came from while it is in memory.
    ref: str | None = None  # as given (``origin/main``)
    commit: str | None = None  # None: the ref does not resolve (no base yet); everything is new
    batches: dict[str, str] = Field(default_factory=dict)  # batch id -> content_sha256 at the base
    benchmark_sha256: str | None = None


class BatchState(BaseModel):
    """One batch in a run's data diff (see ``LibrarySummary``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: str  # unchanged | added | replaced | removed
    rows: int = 0
    pending: int = 0  # rows waiting for a lab value of the target (a duplicate counts as a duplicate only)
    duplicates: int = 0  # rows that repeat the spectrum of the copy kept for training (dropped from drift and training)
    trained: int = 0
    filled: int = 0  # of the duplicates: pending rows whose lab value another copy (trained on) brings
    conflicts: int = 0  # of the duplicates: rows whose lab value differs from the trained copy's
    instrument: str = ""
    accepted_drift: str | None = None  # the reason of the batch's ``drift_acceptance``, when it has one
    accepted_by: str | None = None  # who accepted it


class LibrarySummary(Record):
    """``data/library.json``: what ``prepare`` made of the library for this run (the report's data diff)."""

    kind: str = "library summary"

    target: str
    unit: str
    benchmark_sha256: str
    benchmark_rows: int
    benchmark_changed: bool = False
    reference_rows: int
    candidate_rows: int
    training_rows: int
    batches: list[BatchState] = Field(default_factory=list)
    # Each dropped copy: sample, batch, of, of_batch (the copy trained on), rms, kind (duplicate | filled |
    # conflict) and, for a conflict, value and of_value (soil_trainer.library.assemble).
    duplicates: list[dict[str, str | float]] = Field(default_factory=list)


BASE_LISTING = ".soilci/base.json"


def registered_model_name(target: str, explicit: str | None = None) -> str:
    """The registered model's name: ``explicit`` if params name it, else from the target.

    >>> registered_model_name("SOC_target")
    'soil-soc'
    >>> registered_model_name("pH_target", "ph-lab-a")
    'ph-lab-a'
    """
    if explicit:
        return explicit
    stem = target.removesuffix("_target").lower()
    return "soil-" + "".join(c if c.isalnum() else "-" for c in stem).strip("-")
