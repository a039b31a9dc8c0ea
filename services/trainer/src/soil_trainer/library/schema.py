"""The canonical batch table's schema, checked with pandera on every write and every read.

Hundreds of band columns share one rule, so they are checked as one block (a frame-wide check)
rather than as hundreds of pandera columns, which would cost seconds per batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from soil_contracts.library import SAMPLE_ID
from soil_trainer.errors import DataError

MAX_LISTED = 5


def _finite_bands(bands: list[str]):
    def check(frame: pd.DataFrame) -> pd.DataFrame | bool:
        block = frame[bands]
        numeric = all(pd.api.types.is_float_dtype(t) for t in block.dtypes)
        finite = np.isfinite(block.to_numpy(dtype=np.float64)) if numeric else False
        if numeric and finite.all():
            return True  # a passed scalar: pandera would otherwise sift the frame-wide result column by column
        ok = pd.DataFrame(True, index=frame.index, columns=frame.columns)
        ok[bands] = finite
        return ok

    return check


def batch_schema(bands: list[str], targets: list[str]) -> pa.DataFrameSchema:
    """``sample_id`` (unique text), targets (float, empty = waiting for a lab value), bands (finite float)."""
    columns = {SAMPLE_ID: pa.Column(str, nullable=False, unique=True, checks=pa.Check.str_length(min_value=1))}
    for target in targets:
        columns[target] = pa.Column(float, nullable=True, checks=pa.Check(
            lambda s: s.isna() | np.isfinite(s), error="finite number or empty"))
    return pa.DataFrameSchema(columns, checks=[pa.Check(_finite_bands(bands), error="finite float band value")],
                              strict=False, coerce=False)


def validate_batch(frame: pd.DataFrame, bands: list[str], targets: list[str], where: str) -> pd.DataFrame:
    """Validate ``frame`` (columns: sample_id, targets, bands in grid order); failures name column and row.

    Raises:
        DataError: wrong or missing columns, or up to five failures (column, row, value, check) and a count.
    """
    if frame.empty:
        raise DataError(f"{where}: the batch has no rows")
    expected = [SAMPLE_ID, *targets, *bands]
    if list(frame.columns) != expected:
        missing = [c for c in expected if c not in frame.columns][:5]
        extra = [str(c) for c in frame.columns if c not in expected][:5]
        raise DataError(f"{where}: columns are not the canonical ones (sample_id, targets, the grid's bands in "
                        f"order); missing {missing or 'none'}, unexpected {extra or 'none'}")
    try:
        return batch_schema(bands, targets).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        lines = []
        for _, case in cases.head(MAX_LISTED).iterrows():
            row = case.get("index")
            row_text = f", data row {int(row) + 1}" if pd.notna(row) else ""
            lines.append(f"{case.get('column') or case.get('schema_context')}{row_text}: "
                         f"{_in_words(str(case.get('check')))} (value {case.get('failure_case')!r})")
        more = f" and {len(cases) - MAX_LISTED} more" if len(cases) > MAX_LISTED else ""
        raise DataError(f"{where}: {len(cases)} value(s) not allowed{more} (rows counted from 1 below the header): "
                        + "; ".join(lines)) from None


# pandera's check names, in the words of the batch's rules (docs/LIBRARY.md)
CHECK_WORDS = {"field_uniqueness": "repeated sample id (each sample needs its own)", "not_nullable": "empty cell",
               "column_in_dataframe": "column missing"}


def _in_words(check: str) -> str:
    if check.startswith("str_length"):
        return "empty sample id"
    if check.startswith("dtype("):
        return f"not stored as {check.removeprefix('dtype(').rstrip(')').strip(chr(39))}"
    return CHECK_WORDS.get(check, check)

