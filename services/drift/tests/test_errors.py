"""Errors: exit codes from the shared contract, and which foreign errors count as bad input."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from soil_contracts.errors import ExitCode, SoilError
from soil_drift.errors import DataError, OutputError, ParamsError, SoilDriftError, translate_read_error


def raised(action) -> BaseException:
    with pytest.raises(Exception) as info:
        action()
    return info.value


def test_every_error_is_a_soil_error_with_exit_2():
    for cls in (SoilDriftError, ParamsError, DataError, OutputError):
        assert issubclass(cls, SoilError) and cls("x").exit_code == ExitCode.BAD_INPUT == 2


def test_a_pandas_error_naming_its_file_becomes_a_data_error(tmp_path):
    exc = raised(lambda: pd.read_csv(tmp_path / "gone.csv"))
    mapped = translate_read_error(exc)
    assert isinstance(mapped, DataError) and str(mapped).startswith(f"{tmp_path / 'gone.csv'}: cannot read")


def test_errors_without_a_file_or_from_elsewhere_stay_crashes(tmp_path):
    no_file = raised(lambda: pa.array([2**53 + 1]).cast(pa.float64()))
    assert translate_read_error(no_file) is None
    assert translate_read_error(raised(lambda: (tmp_path / "gone.csv").read_text())) is None  # not pyarrow or pandas
    assert translate_read_error(ValueError("never raised")) is None
