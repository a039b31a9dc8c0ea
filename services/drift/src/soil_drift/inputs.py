"""The validated pair the tests read: both tables checked against each other, split into column roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soil_contracts.bands import band_columns, band_positions
from soil_drift.config import DriftParams
from soil_drift.errors import DataError
from soil_drift.readers import Table, read_table
from soil_drift.samples import DriftInputs

# An object column whose values mostly parse as numbers is a numeric column with typos, not a category.
NUMERIC_SHARE = 0.5
# The library's batch id of each row: an identifier (a new batch always "drifts"), set aside like sample_id.
IDENTIFIER_COLUMNS = ("batch",)
# Bands gathered column by column before they are copied into the row-major spectra matrix.
SPECTRA_BLOCK = 64


def load_inputs(reference: Path, candidate: Path, params: DriftParams) -> DriftInputs:
    """Read both files and validate them as a pair; every problem is a DataError naming its file."""
    return validate_pair(read_table(reference, allow_no_rows=True), read_table(candidate, allow_no_rows=True), params)


def validate_pair(reference: Table, candidate: Table, params: DriftParams) -> DriftInputs:
    """Check the two tables against each other and the params; return the data the tests need.

    A candidate without rows (the PR adds no samples) is valid and not compared: it stands for an
    empty table with the reference's columns. So is a reference without rows (the base has no
    library yet), when the candidate has rows. A NaN in a numeric scalar column is a missing value
    (a pending lab value): counted in ``missing`` and left out of ``numeric``.
    """
    if not (candidate.n_rows and reference.n_rows):
        import pandas as pd
    if candidate.n_rows == 0:
        candidate = Table.from_frame(pd.DataFrame(columns=reference.names), candidate.path)
    elif reference.n_rows == 0:  # a library's first batches: nothing trusted to compare with yet
        reference = Table.from_frame(pd.DataFrame(columns=candidate.names), reference.path)
    excluded = set(params.exclude_columns) | set(IDENTIFIER_COLUMNS)
    ref_cols = [c for c in reference.names if c not in excluded]
    cand_cols = [c for c in candidate.names if c not in excluded]
    _check_columns(reference, ref_cols, candidate, cand_cols, params)
    for table in (reference, candidate):
        if 0 < table.n_rows < params.min_rows or (table is reference and not table.n_rows and not candidate.n_rows):
            raise DataError(
                f"{table.path}: {table.n_rows} rows, fewer than the {params.min_rows} the tests need "
                f"(drift.min_rows)"
            )

    bands = band_columns(ref_cols)
    band_set = set(bands)
    scalars = [c for c in ref_cols if c not in band_set]
    inputs = DriftInputs(
        reference_path=str(reference.path),
        candidate_path=str(candidate.path),
        n_reference=reference.n_rows,
        n_candidate=candidate.n_rows,
        bands=bands,
        positions=np.array(band_positions(bands)),
        reference_spectra=_spectra(reference, bands),
        candidate_spectra=_spectra(candidate, bands),
    )
    for name in scalars:
        if _looks_numeric(reference, name):
            pair, counts = [], []
            for table in (reference, candidate):
                values = _parse_numeric(table, name)
                _refuse(table.path, name, np.isinf(values), "infinite",
                        "a missing value is allowed here (a pending lab value), an infinite one is not")
                present = ~np.isnan(values)
                pair.append(values[present])
                counts.append(int(values.size - present.sum()))
            inputs.numeric[name] = (pair[0], pair[1])
            if any(counts):
                inputs.missing[name] = (counts[0], counts[1])
        else:
            inputs.categorical[name] = (_categories(reference, name), _categories(candidate, name))
    inputs.key_column = params.key_column or _default_key(list(inputs.numeric))
    if inputs.key_column is not None and inputs.key_column not in inputs.numeric:
        raise DataError(
            f"{reference.path}: drift.key_column {inputs.key_column!r} must be a numeric column"
        )
    _check_testable(inputs)
    return inputs


def _check_testable(inputs: DriftInputs) -> None:
    """Something is left to test once columns without a value in one file are set aside."""
    if not inputs.n_candidate or not inputs.n_reference or inputs.bands or inputs.categorical:
        return
    if any(ref.size and cand.size for ref, cand in inputs.numeric.values()):
        return
    raise DataError(
        f"{inputs.candidate_path}: nothing to test: {_listing(list(inputs.numeric))} "
        f"{'has' if len(inputs.numeric) == 1 else 'have'} no value in one of the files, and there are "
        f"no spectral bands"
    )


def _check_columns(
    reference: Table, ref_cols: list[str], candidate: Table, cand_cols: list[str], params: DriftParams,
) -> None:
    """Both tables hold the key column, something to test, and the same columns."""
    for table, cols in ((reference, ref_cols), (candidate, cand_cols)):
        if params.key_column is not None and params.key_column not in cols:
            raise DataError(f"{table.path}: missing column {params.key_column!r} (drift.key_column)")
        if not cols:
            batch = " and the batch column" if set(IDENTIFIER_COLUMNS) & set(table.names) else ""
            raise DataError(
                f"{table.path}: missing columns: nothing to test once drift.exclude_columns "
                f"({', '.join(sorted(set(params.exclude_columns)))}){batch} are set aside"
            )
    ref_set, cand_set = set(ref_cols), set(cand_cols)  # built once: a set per column is quadratic
    missing = [c for c in ref_cols if c not in cand_set]
    if missing:
        raise DataError(
            f"{candidate.path}: missing {len(missing)} columns of the reference {reference.path}: "
            f"{_listing(missing)}"
        )
    extra = [c for c in cand_cols if c not in ref_set]
    if extra:
        raise DataError(
            f"{candidate.path}: {len(extra)} columns are not in the reference {reference.path}: "
            f"{_listing(extra)}; both files need the same columns"
        )


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
    import pandas as pd

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


def _refuse(path: Path, name: str, bad: np.ndarray, what: str, rule: str) -> None:
    """Raise a DataError counting the ``bad`` values of a column and naming the first one's row."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {name} has {int(bad.sum())} {what} values (first at data row {row + 1}); {rule}"
        )


def _looks_numeric(table: Table, name: str) -> bool:
    if table.is_numeric(name):
        return True
    if table.is_bool(name):
        return False
    import pandas as pd

    values = table.raw(name)
    present = values[~pd.isna(values)]
    if present.size == 0:
        return True
    parsed = pd.to_numeric(pd.Series(present), errors="coerce")
    return float(parsed.notna().mean()) > NUMERIC_SHARE


def _spectra(table: Table, bands: list[str]) -> np.ndarray:
    """Band columns as a C-contiguous rows x bands float32 matrix (one spectrum per contiguous row).

    Columns arrive one at a time (a Parquet file is decoded in groups of columns); they are gathered
    band-major in a block of ``SPECTRA_BLOCK`` bands and copied into the matrix block by block, so the
    row-major matrix costs one transposed copy rather than a strided write per column.
    """
    matrix = np.empty((table.n_rows, len(bands)), dtype=np.float32)
    block = np.empty((min(SPECTRA_BLOCK, len(bands)), table.n_rows), dtype=np.float32)
    filled, start = 0, 0
    for band, values in table.columns(bands):
        values = _parse_numeric(table, band, values)
        with np.errstate(over="ignore"):
            block[filled] = values
        if not np.isfinite(block[filled]).all():
            _check_finite(table.path, band, values)
            raise DataError(f"{table.path}: column {band} has values beyond float32 range (|x| > 3.4e38)")
        filled += 1
        if filled == len(block) or start + filled == len(bands):
            matrix[:, start:start + filled] = block[:filled].T
            start, filled = start + filled, 0
    return matrix


def _categories(table: Table, name: str) -> np.ndarray:
    import pandas as pd

    values = table.raw(name)
    _refuse(table.path, name, pd.isna(values), "missing", "the gate needs complete data")
    return np.asarray([str(v) for v in values], dtype=object)


def _default_key(numeric: list[str]) -> str | None:
    """The key soil property: the first ``*_target`` column, else the first numeric scalar."""
    targets = [c for c in numeric if c.endswith("_target")]
    return (targets or numeric or [None])[0]
