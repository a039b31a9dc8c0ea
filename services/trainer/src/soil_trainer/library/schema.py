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
    def check(frame: pd.DataFrame) -> pd.DataFrame:
        ok = pd.DataFrame(True, index=frame.index, columns=frame.columns)
        block = frame[bands]
        numeric = all(pd.api.types.is_float_dtype(t) for t in block.dtypes)
        ok[bands] = np.isfinite(block.to_numpy(dtype=np.float64)) if numeric else False
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
            row_text = f", row {int(row)}" if pd.notna(row) else ""
            lines.append(f"{case.get('column') or case.get('schema_context')}{row_text}: "
                         f"{case.get('check')} (value {case.get('failure_case')!r})")
        more = f" and {len(cases) - MAX_LISTED} more" if len(cases) > MAX_LISTED else ""
        raise DataError(f"{where}: {len(cases)} schema failure(s){more}: " + "; ".join(lines)) from None


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
    from soil_contracts.units import unit_range

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
