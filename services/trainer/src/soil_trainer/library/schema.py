"""The canonical batch table's schema, checked with pandera on every write and every read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from soil_contracts.library import SAMPLE_ID
from soil_trainer.errors import DataError

MAX_LISTED = 5


def batch_schema(bands: list[str], targets: list[str]) -> pa.DataFrameSchema:
    """``sample_id`` (unique text), targets (float, empty = waiting for a lab value), bands (finite float).

    Column order is part of the schema: sample_id, targets, then bands in grid order.
    """
    finite = pa.Check(lambda s: np.isfinite(s), element_wise=False, error="finite number")
    columns = {SAMPLE_ID: pa.Column(str, nullable=False, unique=True,
                                    checks=pa.Check.str_length(min_value=1))}
    for target in targets:
        columns[target] = pa.Column(float, nullable=True, checks=pa.Check(
            lambda s: s.isna() | np.isfinite(s), error="finite number or empty"))
    for band in bands:
        columns[band] = pa.Column(float, nullable=False, checks=finite)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, coerce=False)


def validate_batch(frame: pd.DataFrame, bands: list[str], targets: list[str], where: str) -> pd.DataFrame:
    """Validate ``frame`` against ``batch_schema``; every failure is a DataError naming column and row.

    Raises:
        DataError: lists up to five failures (column, row, value, check) and how many there are.
    """
    if frame.empty:
        raise DataError(f"{where}: the batch has no rows")
    try:
        return batch_schema(bands, targets).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        lines = []
        for _, case in cases.head(MAX_LISTED).iterrows():
            row = case.get("index")
            row_text = f", row {int(row)}" if pd.notna(row) else ""
            lines.append(f"{case.get('column') or case.get('schema_context')}{row_text}: "
                         f"{case.get('check')} (value {case.get('failure_case')!r})")
        more = f" and {len(cases) - MAX_LISTED} more" if len(cases) > MAX_LISTED else ""
        raise DataError(f"{where}: {len(cases)} schema failure(s){more}: " + "; ".join(lines)) from None
