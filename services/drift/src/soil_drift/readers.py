"""Reading an input file column by column; a file that cannot be read is a DataError that names it."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soil_drift.errors import DataError
from soil_drift.threads import gate_threads

if TYPE_CHECKING:  # pandas is imported where a CSV is read: the Parquet path never needs it
    import pandas as pd

PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv"}
# A column pandas named for a header cell without a name, or a DataFrame index written out with it.
_INDEX_COLUMN = re.compile(r"^(?:|Unnamed: \d+|__index_level_\d+__)$")


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
        import pandas as pd

        dtype = self._series[name].dtype
        return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)

    def is_bool(self, name: str) -> bool:
        import pandas as pd

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
        for start in range(0, len(names), self.GROUP):
            group = names[start:start + self.GROUP]
            try:
                table = self._file.read(columns=group, use_threads=gate_threads() > 1)
            except Exception as exc:  # a corrupt column chunk surfaces here, not when opening
                raise DataError(f"{self.path}: cannot read as Parquet ({type(exc).__name__}: {exc})") from exc
            for name, col in zip(group, table.columns, strict=True):
                yield name, self._decode(name, col)
            del table

    def _decode(self, name: str, col: Any) -> np.ndarray:
        """One Arrow column as numpy; an int64 beyond 2**53 or equal-length lists are a DataError."""
        import pyarrow as pa

        try:
            if self.is_numeric(name):
                return _float64_values(col.cast(pa.float64()))
            values = np.asarray(col.to_pylist(), dtype=object)
        except pa.ArrowException as exc:
            raise DataError(
                f"{self.path}: column {name} cannot be converted ({type(exc).__name__}: {exc})"
            ) from exc
        if values.ndim != 1:  # lists of equal length stack into a matrix
            raise DataError(f"{self.path}: column {name} holds {col.type} values, expected numbers or labels")
        return values


def _float64_values(col: Any) -> np.ndarray:
    """A float64 Arrow column as a numpy array, nulls as NaN, read from its buffers.

    Arrow's own ``to_numpy`` and ``fill_null`` import pandas (0.25-0.5 s of a gate run that reads
    only Parquet); the values buffer and the validity bitmap are read directly instead (Arrow's
    columnar format: a little-endian bitmap, 1 = valid).
    """
    out = np.empty(len(col), dtype=np.float64)
    pos = 0
    for chunk in col.chunks:
        n = len(chunk)
        part = out[pos:pos + n]
        pos += n
        if n == 0:
            continue
        if chunk.null_count == n:
            part[:] = np.nan
            continue
        validity, values = chunk.buffers()[:2]
        part[:] = np.frombuffer(values, dtype=np.float64, count=n, offset=chunk.offset * 8)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            part[~bits[chunk.offset:chunk.offset + n].astype(bool)] = np.nan
    return out


def check_header(path: Path, names: list[str]) -> None:
    """Refuse a header that would be read silently wrong: duplicates, index columns, other separators.

    Raises:
        DataError: naming the file and the column(s).
    """
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})
    if dups:
        raise DataError(f"{path}: duplicate column(s) {', '.join(dups[:5])}: each column must appear once")
    unnamed = [n or "(empty)" for n in names if _INDEX_COLUMN.match(n.strip())]
    if unnamed:
        raise DataError(
            f"{path}: column(s) {', '.join(unnamed[:5])} have no name (a DataFrame index written with the "
            "data?); write the file without its index"
        )
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        raise DataError(
            f"{path}: one column {names[0][:60]!r}...: not comma-separated (semicolons or tabs?); write "
            "a comma-separated CSV with '.' as the decimal mark"
        )


def _csv_header(path: Path) -> list[str]:
    """The first row of a CSV as written (pandas would rename duplicates to ``name.1``)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({type(exc).__name__}: {exc})") from exc


def _read_csv(path: Path) -> FrameTable:
    import pandas as pd

    try:
        return FrameTable(pd.read_csv(path), path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty (no header and no rows)") from exc


def read_table(path: Path, allow_no_rows: bool = False) -> Table:
    """Open a Parquet or CSV file; a missing, empty, unreadable or (unless allowed) row-less file is a DataError.

    ``allow_no_rows``: a header without rows is a valid table (the candidate of a PR that adds no samples).
    """
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
    if kind == "CSV":
        check_header(path, _csv_header(path))
    try:
        table: Table = _read_csv(path) if kind == "CSV" else ParquetTable(path)
    except DataError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many types for a corrupt file
        raise DataError(f"{path}: cannot read as {kind} ({type(exc).__name__}: {exc})") from exc
    if kind == "Parquet":
        check_header(path, table.names)
    if table.n_rows == 0 and allow_no_rows:
        return table
    if not table.names:
        raise DataError(f"{path}: file has no columns")
    if table.n_rows == 0:
        raise DataError(f"{path}: no rows (only a header)")
    return table
