"""Source files a batch can be imported from, read strictly into one raw spectral table.

Header styles (the band columns of a file):

| style | example columns | axis | scale |
| --- | --- | --- | --- |
| ``numeric`` (spectrometer exports) | ``350``, ``351``, ..., ``2500`` | declared | declared |
| ``ossl`` (Open Soil Spectral Library) | ``scan_visnir.350_ref``, ``scan_mir.600_abs`` | nm / cm-1 | ``_ref`` reflectance (declared fraction or percent), ``_abs`` absorbance |
| ``limesoda`` | ``wl_350``, ``wn_3799`` | nm / cm-1 | declared |

CSV and Parquet files are read; ``limesoda:<dataset>`` reads a LimeSoDa dataset from its package.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from soil_contracts.bands import BAND_PATTERN, SpectralAxis
from soil_contracts.library import SAMPLE_ID, Scale
from soil_trainer.errors import DataError

NUMERIC_HEADER = re.compile(r"^\d+(?:\.\d+)?$")
OSSL_HEADER = re.compile(r"^scan_(?P<kind>visnir|nir|mir)\.(?P<position>\d+(?:\.\d+)?)_(?P<suffix>ref|abs)$")
POSITION_TEXT = re.compile(r"\d+(?:\.\d+)?")  # the last number in a band header is its position
INDEX_HEADER = re.compile(r"^(Unnamed: ?\d+|index|level_0)$")
LIMESODA_PREFIX = "limesoda:"


@dataclass
class RawSpectra:
    """A source file as read: one row per sample, bands in file order.

    Attributes:
        ids: (n,) sample ids as strings.
        positions: (p,) band positions on ``axis`` (nm or cm-1), in file order.
        values: (n, p) float64 spectra on the source scale.
        targets: target columns present in the file (float64, NaN = waiting for a lab value).
        style: header style (``numeric``, ``ossl``, ``limesoda``).
        decimals: decimals of the most precise band header (``wn_3797.1``: 1), the positions' precision.
        axis: the axis the header implies, or None when only the metadata can say.
        scale_hint: the scale the header implies (OSSL ``_abs``), or None.
        ignored: other columns, kept out of the batch.
    """

    source: str
    format: str
    ids: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    targets: pd.DataFrame
    style: str
    axis: SpectralAxis | None = None
    scale_hint: Scale | None = None
    ignored: list[str] = field(default_factory=list)
    decimals: int = 0


def read_source(source: str, *, id_column: str, targets: list[str], folds: list[int] | None = None) -> RawSpectra:
    """Read ``source`` (a CSV/Parquet path or ``limesoda:<dataset>``) strictly.

    Raises:
        DataError: unreadable file, duplicated/unsorted/mixed band columns, values that are not
            numbers (decimal commas, text), an index column, a missing id or target column.
    """
    if source.startswith(LIMESODA_PREFIX):
        return _read_limesoda(source.removeprefix(LIMESODA_PREFIX), targets, folds)
    if folds:
        raise DataError("--folds applies to limesoda:<dataset> sources only")
    path = Path(source)
    frame, fmt = _read_table(path)
    return _from_frame(frame, str(path), fmt, id_column=id_column, targets=targets)


def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            _check_csv_header(path)
            # Every column as text first: numbers are parsed below, naming the cell that is not one.
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8"), "csv"
        if suffix in {".parquet", ".pq"}:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            _check_duplicates(path, names)
            return pd.read_parquet(path), "parquet"
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def _check_csv_header(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if len(header) <= 2 and any(";" in h for h in header):
        raise DataError(
            f"{path}: the header is one column holding ';' - a semicolon-separated file (often with decimal "
            "commas); export it comma-separated with a decimal point"
        )
    _check_duplicates(path, header)


def _check_duplicates(path: Path, names: list[str]) -> None:
    repeated = sorted(n for n, k in Counter(str(n).strip() for n in names).items() if k > 1)
    if repeated:
        raise DataError(f"{path}: duplicated columns {', '.join(repeated[:5])}")


def _band_style(columns: list[str]) -> tuple[str, dict[str, float], SpectralAxis | None, Scale | None]:
    """Which header style the band columns use, and each band column's position."""
    styles: dict[str, dict[str, float]] = {"numeric": {}, "ossl": {}, "limesoda": {}}
    kinds, suffixes, prefixes = set(), set(), set()
    for col in columns:
        if NUMERIC_HEADER.match(col):
            styles["numeric"][col] = float(col)
        elif m := OSSL_HEADER.match(col):
            styles["ossl"][col] = float(m["position"])
            kinds.add(m["kind"])
            suffixes.add(m["suffix"])
        elif m := BAND_PATTERN.match(col):
            styles["limesoda"][col] = float(m["position"])
            prefixes.add(m["prefix"])
    used = [s for s, cols in styles.items() if cols]
    if not used:
        raise DataError("no band columns: expected numeric headers (350, 351, ...), OSSL names "
                        "(scan_visnir.350_ref, scan_mir.600_abs) or LimeSoDa names (wl_350, wn_4000)")
    if len(used) > 1:
        raise DataError(f"band columns mix header styles ({', '.join(used)}); use one")
    style = used[0]
    axis = scale = None
    if style == "ossl":
        if len(kinds) > 1 or len(suffixes) > 1:
            raise DataError("OSSL band columns mix instruments or scales "
                            f"({', '.join(sorted(kinds | suffixes))}); import them as separate batches")
        axis = SpectralAxis.WAVENUMBER_CM1 if kinds == {"mir"} else SpectralAxis.WAVELENGTH_NM
        scale = Scale.ABSORBANCE if suffixes == {"abs"} else None
    elif style == "limesoda":
        if len(prefixes) > 1:
            raise DataError("band columns mix wavelength (wl_) and wavenumber (wn_)")
        axis = SpectralAxis.WAVELENGTH_NM if prefixes == {"wl"} else SpectralAxis.WAVENUMBER_CM1
    return style, styles[style], axis, scale


def _from_frame(frame: pd.DataFrame, source: str, fmt: str, *, id_column: str, targets: list[str]) -> RawSpectra:
    columns = [str(c) for c in frame.columns]
    index_like = [c for c in columns if INDEX_HEADER.match(c)]
    if index_like:
        raise DataError(f"{source}: column {index_like[0]!r} looks like a saved pandas index; "
                        "write the file without it (to_csv(index=False))")
    try:
        style, bands, axis, scale = _band_style(columns)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    positions = np.array(list(bands.values()))
    step = np.diff(positions)
    if len(positions) > 1 and not (np.all(step > 0) or np.all(step < 0)):
        where = int(np.argmax((step <= 0) if np.any(step > 0) else (step >= 0)))
        names = list(bands)
        raise DataError(f"{source}: band columns are not in order or repeat a position "
                        f"({names[where]} then {names[where + 1]})")
    if id_column not in columns:
        raise DataError(f"{source}: no sample id column {id_column!r} (--id-column names it)")
    missing = [t for t in targets if t not in columns]
    if missing:
        raise DataError(f"{source}: target column(s) {', '.join(missing)} not in the file")
    ids = frame[id_column].astype(str).str.strip().to_numpy()
    check_ids(ids, source, id_column)
    values = _band_values(frame, list(bands), source)
    target_frame = pd.DataFrame({t: _numbers(frame[t], source, t, allow_missing=True) for t in targets})
    ignored = [c for c in columns if c not in bands and c != id_column and c not in targets]
    decimals = max(len(POSITION_TEXT.findall(c)[-1].partition(".")[2]) for c in bands)
    return RawSpectra(source=source, format=fmt, ids=ids, positions=positions, values=values,
                      targets=target_frame, style=style, axis=axis, scale_hint=scale, ignored=ignored,
                      decimals=decimals)


def check_ids(ids: np.ndarray, source: str, id_column: str, limit: int = 5) -> None:
    """Refuse empty or repeated sample ids, naming them with their data rows (1 = the row below the header).

    Raises:
        DataError: ``Z-F3-12 in data rows 1 and 2``; up to ``limit`` ids, and how many more.
    """
    empty = np.flatnonzero(pd.isna(ids) | np.isin(ids, ["", "nan", "None"]))
    if empty.size:
        rows = ", ".join(str(i + 1) for i in empty[:limit]) + (f" and {empty.size - limit} more" if empty.size > limit
                                                               else "")
        raise DataError(f"{source}: {empty.size} sample(s) without an id in column {id_column!r} (data rows {rows}, "
                        "counted from 1 below the header); every sample needs its own id")
    seen: dict[str, list[int]] = {}
    for row, sample in enumerate(ids, start=1):
        seen.setdefault(str(sample), []).append(row)
    repeated = {k: v for k, v in seen.items() if len(v) > 1}
    if repeated:
        named = "; ".join(f"{k} in data rows {', '.join(map(str, v[:-1]))} and {v[-1]}"
                          for k, v in list(repeated.items())[:limit])
        more = f" and {len(repeated) - limit} more" if len(repeated) > limit else ""
        raise DataError(f"{source}: {len(repeated)} sample id(s) used more than once in column {id_column!r} "
                        f"({named}{more}; rows counted from 1 below the header); give each sample its own id, or "
                        "remove the repeated rows (a re-measurement of a sample gets an id of its own)")


def _band_values(frame: pd.DataFrame, bands: list[str], source: str) -> np.ndarray:
    """The band columns as an (n, p) float64 array, parsed as ``_numbers`` parses each column.

    The block is converted in one pass (a 46 x 830 CSV export took seconds column by column); only when
    some cell is not a finite number are the columns parsed one by one, so the error names the first such
    cell as before.
    """
    block = frame[bands]
    dtypes = set(block.dtypes)
    booleans = any(pd.api.types.is_bool_dtype(d) for d in dtypes)  # refused per column, by _numbers
    if not booleans and all(pd.api.types.is_numeric_dtype(d) for d in dtypes):
        values = block.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isfinite(values).all():
            return np.ascontiguousarray(values)  # C order, as column_stack gave
    elif not booleans and len(dtypes) == 1:  # text (a CSV read as text): every cell in one column, parsed as one
        cells = pd.Series(block.to_numpy().ravel(order="F"), dtype=dtypes.pop())
        try:
            parsed = _numbers(cells, source, "", allow_missing=False)
        except DataError:
            pass
        else:
            return np.ascontiguousarray(parsed.reshape(len(bands), len(block)).T)
    return np.column_stack([_numbers(block[c], source, c, allow_missing=False) for c in bands])


def _numbers(column: pd.Series, source: str, name: str, *, allow_missing: bool) -> np.ndarray:
    """A column as float64; names the first cell that is not a finite number (NaN allowed for targets)."""
    if pd.api.types.is_bool_dtype(column.dtype):
        raise DataError(f"{source}: column {name!r} holds true/false values, not numbers")
    if pd.api.types.is_numeric_dtype(column.dtype):  # Parquet/LimeSoDa: typed already, only finiteness to check
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values) & ~(np.isnan(values) & allow_missing)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{source}: column {name!r}, row {row + 1}: {values[row]!r} is not a finite number")
        return values
    text = column.astype(str).str.strip()
    empty = column.isna().to_numpy() | text.isin(["", "nan", "NaN", "NA", "None"]).to_numpy()
    parsed = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=np.float64)
    bad = (~empty & ~np.isfinite(parsed)) | (empty & (not allow_missing))
    if bad.any():
        row = int(np.argmax(bad))
        value = "an empty cell" if empty[row] else repr(text.iloc[row])
        hint = " (a decimal comma? export with a decimal point)" if "," in str(text.iloc[row]) else ""
        raise DataError(f"{source}: column {name!r}, row {row + 2} (file line): {value} is not a finite number{hint}")
    return parsed


def _read_limesoda(dataset: str, targets: list[str], folds: list[int] | None) -> RawSpectra:
    from soil_trainer.dataset import available_datasets

    known = available_datasets()
    if dataset not in known:
        raise DataError(f"limesoda:{dataset}: unknown LimeSoDa dataset; known: {', '.join(known)}")
    from LimeSoDa import load_dataset

    raw = load_dataset(dataset)
    data: pd.DataFrame = raw["Dataset"].reset_index(drop=True)
    fold_of = np.asarray(raw["Folds"])
    keep = np.isin(fold_of, folds) if folds else np.ones(len(data), bool)
    if folds and not keep.any():
        raise DataError(f"limesoda:{dataset}: no rows in folds {folds} (folds are {sorted(set(fold_of))})")
    frame = data[keep].copy()
    frame.insert(0, SAMPLE_ID, [f"{dataset}:{i}" for i in np.flatnonzero(keep)])
    return _from_frame(frame, f"limesoda:{dataset}", "limesoda", id_column=SAMPLE_ID, targets=targets)
