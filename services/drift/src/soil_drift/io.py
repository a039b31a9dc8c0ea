"""Reading and validating the two tables; every problem becomes a DataError that names the file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from soil_drift.config import DriftParams
from soil_drift.errors import DataError

BAND_PATTERN = re.compile(r"^(wl|wn)_\d+(\.\d+)?$")
PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv"}
# An object column whose values mostly parse as numbers is a numeric column with typos, not a category.
NUMERIC_SHARE = 0.5


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the final file the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def band_columns(columns: list[str]) -> list[str]:
    """Spectral band columns (``wl_<nm>``, ``wn_<cm-1>``) in their file order."""
    return [c for c in columns if BAND_PATTERN.match(str(c))]


def band_positions(bands: list[str]) -> np.ndarray:
    return np.array([float(b.split("_", 1)[1]) for b in bands])


class Table:
    """One input file, read column by column so a wide file is never held twice in memory."""

    path: Path
    names: list[str]
    n_rows: int

    def is_numeric(self, name: str) -> bool:
        raise NotImplementedError

    def is_bool(self, name: str) -> bool:
        raise NotImplementedError

    def columns(self, names: list[str]) -> Iterator[tuple[str, np.ndarray]]:
        """Each column as numpy: float64 for numeric columns (nulls as NaN), object otherwise."""
        raise NotImplementedError

    def raw(self, name: str) -> np.ndarray:
        return next(iter(self.columns([name])))[1]

    @staticmethod
    def from_frame(frame: pd.DataFrame, path: Path | str = "<frame>") -> FrameTable:
        return FrameTable(frame, Path(path))


class FrameTable(Table):
    """A pandas DataFrame (CSV input, or data already in memory)."""

    def __init__(self, frame: pd.DataFrame, path: Path) -> None:
        self.frame = frame
        self.path = path
        self.names = [str(c) for c in frame.columns]
        self.n_rows = len(frame)
        self._series = {str(c): frame[c] for c in frame.columns}

    def is_numeric(self, name: str) -> bool:
        dtype = self._series[name].dtype
        return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)

    def is_bool(self, name: str) -> bool:
        return pd.api.types.is_bool_dtype(self._series[name].dtype)

    def columns(self, names: list[str]) -> Iterator[tuple[str, np.ndarray]]:
        for name in names:
            col = self._series[name]
            if self.is_numeric(name):
                yield name, col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                yield name, col.to_numpy(dtype=object)


class ParquetTable(Table):
    """A Parquet file; columns are decoded in groups, so memory stays near one group's size."""

    GROUP = 64

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self._file = pq.ParquetFile(path)
        schema = self._file.schema_arrow
        self.names = [str(n) for n in schema.names]
        self._types = {str(f.name): f.type for f in schema}
        self.n_rows = self._file.metadata.num_rows

    def is_numeric(self, name: str) -> bool:
        import pyarrow as pa

        t = self._types[name]
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)

    def is_bool(self, name: str) -> bool:
        import pyarrow as pa

        return pa.types.is_boolean(self._types[name])

    def columns(self, names: list[str]) -> Iterator[tuple[str, np.ndarray]]:
        import pyarrow as pa

        for start in range(0, len(names), self.GROUP):
            group = names[start:start + self.GROUP]
            try:
                table = self._file.read(columns=group)
            except Exception as exc:  # a corrupt column chunk surfaces here, not when opening
                raise DataError(f"{self.path}: cannot read as Parquet ({type(exc).__name__}: {exc})") from exc
            for name, col in zip(group, table.columns, strict=True):
                if self.is_numeric(name):
                    yield name, col.cast(pa.float64()).to_numpy(zero_copy_only=False)
                else:
                    yield name, np.asarray(col.to_pylist(), dtype=object)
            del table


def read_table(path: Path) -> Table:
    """Open a Parquet or CSV file; a missing, empty, unreadable or row-less file is a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a Parquet or CSV file")
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES | CSV_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .parquet or .csv)")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if size == 0:
        raise DataError(f"{path}: file is empty")
    kind = "CSV" if suffix in CSV_SUFFIXES else "Parquet"
    try:
        table: Table = FrameTable(pd.read_csv(path), path) if kind == "CSV" else ParquetTable(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty (no header and no rows)") from exc
    except Exception as exc:  # pyarrow and pandas raise many types for a corrupt file
        raise DataError(f"{path}: cannot read as {kind} ({type(exc).__name__}: {exc})") from exc
    if not table.names:
        raise DataError(f"{path}: file has no columns")
    if table.n_rows == 0:
        raise DataError(f"{path}: no rows (only a header)")
    return table


@dataclass
class DriftInputs:
    """Validated reference and candidate data, split into spectra and scalar columns."""

    reference_path: str
    candidate_path: str
    n_reference: int
    n_candidate: int
    bands: list[str]
    positions: np.ndarray
    reference_spectra: np.ndarray  # float32, rows x bands
    candidate_spectra: np.ndarray
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    categorical: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    key_column: str | None = None

    @property
    def band_unit(self) -> str:
        return "cm-1" if self.bands and self.bands[0].startswith("wn_") else "nm"


def _listing(names: list[str], limit: int = 6) -> str:
    head = ", ".join(names[:limit])
    return head + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _parse_numeric(table: Table, name: str, values: np.ndarray | None = None) -> np.ndarray:
    """A numeric column as float64; a value that is not a number is a DataError naming it."""
    if values is None:
        values = table.raw(name)
    if table.is_numeric(name):
        return values
    if table.is_bool(name):
        raise DataError(f"{table.path}: column {name} holds true/false values, expected numbers")
    parsed = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(parsed) & ~pd.isna(values))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{table.path}: non-numeric value {values[row]!r} in numeric column {name} "
            f"(data row {row + 1}; {bad.size} such values)"
        )
    return parsed


def _check_finite(path: Path, name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        n_nan = int(np.isnan(values).sum())
        n_inf = int(bad.sum()) - n_nan
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {name} has {n_nan} NaN/missing and {n_inf} infinite values "
            f"(first at data row {row + 1}); the gate needs complete, finite numbers"
        )


def _looks_numeric(table: Table, name: str) -> bool:
    if table.is_numeric(name):
        return True
    if table.is_bool(name):
        return False
    values = table.raw(name)
    present = values[~pd.isna(values)]
    if present.size == 0:
        return True
    parsed = pd.to_numeric(pd.Series(present), errors="coerce")
    return float(parsed.notna().mean()) > NUMERIC_SHARE


def _spectra(table: Table, bands: list[str]) -> np.ndarray:
    """Band columns as a rows x bands float32 matrix (stored band-major: one column is contiguous)."""
    matrix = np.empty((len(bands), table.n_rows), dtype=np.float32)
    for j, (band, values) in enumerate(table.columns(bands)):
        values = _parse_numeric(table, band, values)
        with np.errstate(over="ignore"):
            matrix[j] = values
        if not np.isfinite(matrix[j]).all():
            _check_finite(table.path, band, values)
            raise DataError(f"{table.path}: column {band} has values beyond float32 range (|x| > 3.4e38)")
    return matrix.T


def _categories(table: Table, name: str) -> np.ndarray:
    values = table.raw(name)
    missing = pd.isna(values)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{table.path}: column {name} has {int(missing.sum())} missing values "
            f"(first at data row {row + 1}); the gate needs complete data"
        )
    return np.asarray([str(v) for v in values], dtype=object)


def validate_pair(reference: Table, candidate: Table, params: DriftParams) -> DriftInputs:
    """Check the two tables against each other and the params; return the data the tests need."""
    excluded = set(params.exclude_columns)
    ref_cols = [c for c in reference.names if c not in excluded]
    cand_cols = [c for c in candidate.names if c not in excluded]

    for table, cols in ((reference, ref_cols), (candidate, cand_cols)):
        if params.key_column is not None and params.key_column not in cols:
            raise DataError(f"{table.path}: missing column {params.key_column!r} (drift.key_column)")
        if not cols:
            raise DataError(
                f"{table.path}: missing columns: nothing to test once drift.exclude_columns "
                f"({', '.join(sorted(excluded))}) are set aside"
            )
    missing = [c for c in ref_cols if c not in set(cand_cols)]
    if missing:
        raise DataError(
            f"{candidate.path}: missing {len(missing)} columns of the reference {reference.path}: "
            f"{_listing(missing)}"
        )
    extra = [c for c in cand_cols if c not in set(ref_cols)]
    if extra:
        raise DataError(
            f"{candidate.path}: {len(extra)} columns are not in the reference {reference.path}: "
            f"{_listing(extra)}; both files need the same columns"
        )

    for table in (reference, candidate):
        if table.n_rows < params.min_rows:
            raise DataError(
                f"{table.path}: {table.n_rows} rows, fewer than the {params.min_rows} the tests need "
                f"(drift.min_rows)"
            )

    bands = band_columns(ref_cols)
    scalars = [c for c in ref_cols if c not in set(bands)]
    inputs = DriftInputs(
        reference_path=str(reference.path),
        candidate_path=str(candidate.path),
        n_reference=reference.n_rows,
        n_candidate=candidate.n_rows,
        bands=bands,
        positions=band_positions(bands),
        reference_spectra=_spectra(reference, bands),
        candidate_spectra=_spectra(candidate, bands),
    )
    for name in scalars:
        if _looks_numeric(reference, name):
            pair = []
            for table in (reference, candidate):
                values = _parse_numeric(table, name)
                _check_finite(table.path, name, values)
                pair.append(values)
            inputs.numeric[name] = (pair[0], pair[1])
        else:
            inputs.categorical[name] = (_categories(reference, name), _categories(candidate, name))
    inputs.key_column = params.key_column or _default_key(list(inputs.numeric))
    if inputs.key_column is not None and inputs.key_column not in inputs.numeric:
        raise DataError(
            f"{reference.path}: drift.key_column {inputs.key_column!r} must be a numeric column"
        )
    return inputs


def _default_key(numeric: list[str]) -> str | None:
    """The key soil property: the first ``*_target`` column, else the first numeric scalar."""
    targets = [c for c in numeric if c.endswith("_target")]
    return (targets or numeric or [None])[0]


def load_inputs(reference: Path, candidate: Path, params: DriftParams) -> DriftInputs:
    return validate_pair(read_table(reference), read_table(candidate), params)
