"""Reading the input files: a missing, empty, unreadable or unconvertible file is exit 2 naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from soil_drift.errors import DataError
from soil_drift.readers import Table, read_table


def test_empty_file_is_exit_2(tmp_path, slices, run_bad):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    code, err = run_bad(slices[0], empty)
    assert code == 2 and f"{empty}: file is empty" in err


def test_csv_with_only_a_header_has_no_rows(tmp_path, slices, run_bad):
    header = tmp_path / "header.csv"
    slices[1].head(0).to_csv(header, index=False)
    code, err = run_bad(header, header)  # one row-less side is valid (test_check.py, test_gate.py); both is not
    assert code == 2 and f"{header}: 0 rows, fewer than the" in err
    assert read_table(header, allow_no_rows=True).n_rows == 0
    with pytest.raises(DataError, match="no rows"):
        read_table(header)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.parquet", b"PAR1 this is not parquet at all", "cannot read as Parquet"),
    ("binary.csv", bytes(range(256)) * 8, "cannot read as CSV"),
    ("table.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
])
def test_unreadable_files(tmp_path, slices, run_bad, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    code, err = run_bad(path, slices[1])
    assert code == 2 and f"{path}: {message}" in err


def test_missing_file_and_directory(tmp_path, slices, run_bad):
    code, err = run_bad(tmp_path / "nope.parquet", slices[1])
    assert code == 2 and "nope.parquet: file not found" in err
    code, err = run_bad(slices[0], tmp_path)
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize(("column", "message"), [
    (pa.array([2**53 + 1] * 30, pa.int64()), "column extra cannot be converted (ArrowInvalid"),
    (pa.array([[1.0, 2.0]] * 30), "column extra holds list<element: double> values"),
], ids=["int64-beyond-float64", "equal-length-lists"])
def test_parquet_column_numpy_cannot_hold_is_exit_2(tmp_path, slices, run_bad, column, message):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.Table.from_pandas(slices[0], preserve_index=False).append_column("extra", column), path)
    code, err = run_bad(path, path)
    assert code == 2 and f"{path}: {message}" in err


def test_parquet_and_csv_read_the_same_values(tmp_path: Path, slices):
    frame = slices[0].assign(lab="A")
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    parquet, csv = read_table(tmp_path / "t.parquet"), read_table(tmp_path / "t.csv")
    memory = Table.from_frame(frame)
    assert parquet.names == csv.names == memory.names and parquet.n_rows == csv.n_rows == 30
    names = ["SOC_target", "wl_350", "lab"]
    for table in (parquet, csv):
        for (name, got), (_, want) in zip(table.columns(names), memory.columns(names), strict=True):
            assert table.is_numeric(name) == (name != "lab")
            if name == "lab":
                assert list(got) == list(want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-12)


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_duplicated_column_is_refused_not_read_as_another_band(tmp_path, slices, run_bad):
    frame = slices[1]
    dup = _csv(tmp_path, "dup.csv", frame.to_csv(index=False).replace("wl_355", "wl_350", 1))
    code, err = run_bad(slices[0], dup)
    assert code == 2 and f"{dup}: duplicate column(s) wl_350" in err


def test_an_index_column_written_with_the_data_is_refused(tmp_path, slices, run_bad):
    ref = _csv(tmp_path, "ref.csv", slices[0].to_csv(index=True))
    cand = _csv(tmp_path, "cand.csv", slices[1].to_csv(index=True))
    code, err = run_bad(ref, cand)
    assert code == 2 and f"{ref}: column(s) (empty) have no name (a DataFrame index" in err
    indexed = tmp_path / "indexed.parquet"
    table = pa.Table.from_pandas(slices[1], preserve_index=False)
    pq.write_table(table.append_column("__index_level_0__", pa.array(range(len(slices[1])))), indexed)
    code, err = run_bad(slices[0], indexed)
    assert code == 2 and "__index_level_0__ have no name" in err


def test_a_semicolon_csv_with_decimal_commas_is_refused_not_read_as_zero_bands(tmp_path, slices, run_bad):
    text = slices[1].to_csv(index=False, sep=";", decimal=",")
    cand = _csv(tmp_path, "semicolon.csv", text)
    code, err = run_bad(slices[0], cand)
    assert code == 2 and f"{cand}: one column" in err and "not comma-separated (semicolons or tabs?)" in err


def test_numeric_arrow_columns_read_from_buffers_equal_arrow_own_conversion():
    from soil_drift.readers import _float64_values

    values = [None if i % 7 == 0 else float(i) for i in range(300)]
    column = pa.chunked_array([
        pa.array(values).slice(13, 200),  # an offset into the validity bitmap and the values
        pa.array([None, None], pa.float64()),
        pa.array([], pa.float64()),
        pa.array([3, None, 2**40], pa.int64()).cast(pa.float64()),
    ])
    assert np.array_equal(_float64_values(column), column.to_numpy(zero_copy_only=False), equal_nan=True)


def test_the_gate_on_parquet_files_does_not_import_pandas(tmp_path, slices):
    """Reading Parquet needs no pandas; importing it would cost a quarter of the CLI's start."""
    import subprocess
    import sys

    ref, cand = tmp_path / "ref.parquet", tmp_path / "cand.parquet"
    slices[0].to_parquet(ref, index=False)
    slices[1].to_parquet(cand, index=False)
    code = (
        "import sys; from pathlib import Path; from soil_drift.cli import main\n"
        f"rc = main(['check', {str(ref)!r}, {str(cand)!r}, '--out', {str(tmp_path / 'v.json')!r}])\n"
        "assert rc in (0, 1), rc\n"
        "print('pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    assert (tmp_path / "v.json").is_file()
