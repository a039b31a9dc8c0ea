"""Bad input, params or usage: a specific message naming the file or key, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from soil_drift.cli import main


@pytest.fixture(scope="module")
def slices(prepared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small real slices (30 and 25 rows, every band) keep these tests fast."""
    ref = pd.read_parquet(prepared_data / "reference.parquet").head(30)
    cand = pd.read_parquet(prepared_data / "incoming.parquet").head(25)
    return ref, cand


def run(tmp_path: Path, ref, cand, capsys, *extra: str) -> tuple[int, str]:
    """Write the inputs (frames, bytes or paths), run the gate with outputs requested, return code + stderr."""
    paths = []
    for name, item in (("reference", ref), ("candidate", cand)):
        if isinstance(item, Path):
            paths.append(item)
            continue
        path = tmp_path / f"{name}.parquet"
        item.to_parquet(path, index=False)
        paths.append(path)
    out_dir = tmp_path / "out"
    code = main(["check", *map(str, paths), "--out", str(out_dir / "drift.json"),
                 "--plot", str(out_dir / "drift.png"), *extra])
    err = capsys.readouterr().err
    assert not out_dir.exists() or not any(out_dir.iterdir()), "bad input must write nothing"
    return code, err


def test_empty_file_is_exit_2(tmp_path, slices, capsys):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    code, err = run(tmp_path, slices[0], empty, capsys)
    assert code == 2 and f"{empty}: file is empty" in err


def test_csv_with_only_a_header_has_no_rows(tmp_path, slices, capsys):
    header = tmp_path / "header.csv"
    slices[1].head(0).to_csv(header, index=False)
    code, err = run(tmp_path, slices[0], header, capsys)
    assert code == 2 and f"{header}: no rows" in err


def test_missing_column_is_named(tmp_path, slices, capsys):
    ref, cand = slices
    code, err = run(tmp_path, ref, cand.drop(columns=["SOC_target", "wl_700"]), capsys)
    assert code == 2 and "missing 2 columns of the reference" in err and "SOC_target, wl_700" in err


def test_candidate_with_other_columns_is_refused(tmp_path, slices, capsys):
    ref, cand = slices
    code, err = run(tmp_path, ref, cand.rename(columns={"wl_700": "wl_701"}), capsys)
    assert code == 2 and "wl_700" in err  # the first difference found: a reference band is missing
    code, err = run(tmp_path, ref, cand.assign(pH_target=7.0), capsys)
    assert code == 2 and "1 columns are not in the reference" in err and "pH_target" in err


def test_missing_key_column_named_in_params(tmp_path, slices, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("drift:\n  key_column: Clay_target\n")
    code, err = run(tmp_path, *slices, capsys, "--params", str(params))
    assert code == 2 and "missing column 'Clay_target' (drift.key_column)" in err


@pytest.mark.parametrize(("value", "word"), [(np.nan, "1 NaN/missing and 0 infinite"),
                                             (np.inf, "0 NaN/missing and 1 infinite")])
def test_nan_or_infinite_values_are_refused(tmp_path, slices, capsys, value, word):
    ref, cand = slices
    bad = cand.copy()
    bad.loc[4, "wl_1000"] = value
    code, err = run(tmp_path, ref, bad, capsys)
    assert code == 2 and f"column wl_1000 has {word} values (first at data row 5)" in err
    bad = ref.copy()
    bad.loc[0, "SOC_target"] = value
    code, err = run(tmp_path, bad, cand, capsys)
    assert code == 2 and "reference.parquet: column SOC_target" in err


def test_non_numeric_value_in_a_numeric_column(tmp_path, slices, capsys):
    ref, cand = slices
    text = tmp_path / "cand.csv"
    cand.astype({"wl_500": object}).assign(wl_500=lambda f: f["wl_500"].where(f.index != 2, "n/a?")).to_csv(
        text, index=False)
    code, err = run(tmp_path, ref, text, capsys)
    assert code == 2 and "non-numeric value 'n/a?' in numeric column wl_500 (data row 3" in err
    bad = cand.astype({"SOC_target": str})  # a Parquet string column: numbers as text, one with a comma
    bad.loc[7, "SOC_target"] = "1,5"
    code, err = run(tmp_path, ref, bad, capsys)
    assert code == 2 and "non-numeric value '1,5' in numeric column SOC_target" in err


def test_fewer_rows_than_the_tests_need(tmp_path, slices, capsys):
    ref, cand = slices
    code, err = run(tmp_path, ref, cand.head(19), capsys)
    assert code == 2 and "19 rows, fewer than the 20 the tests need (drift.min_rows)" in err


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.parquet", b"PAR1 this is not parquet at all", "cannot read as Parquet"),
    ("binary.csv", bytes(range(256)) * 8, "cannot read as CSV"),
    ("table.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
])
def test_unreadable_files(tmp_path, slices, capsys, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    code, err = run(tmp_path, path, slices[1], capsys)
    assert code == 2 and f"{path}: {message}" in err


def test_missing_file_and_directory(tmp_path, slices, capsys):
    code, err = run(tmp_path, tmp_path / "nope.parquet", slices[1], capsys)
    assert code == 2 and "nope.parquet: file not found" in err
    code, err = run(tmp_path, slices[0], tmp_path, capsys)
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize(("text", "message"), [
    ("drift:\n  bogus: 1\n", "drift.bogus: Extra inputs are not permitted"),
    ("drift:\n  alpha: 2\n", "drift.alpha: Input should be less than or equal to 0.5"),
    ("drift:\n  on_drift: maybe\n", "drift.on_drift: Input should be 'fail' or 'warn'"),
    ("drift: [1, 2]\n", "drift: expected a mapping"),
    ("drift: {alpha: [\n", "cannot read params"),
])
def test_bad_params_name_the_key(tmp_path, slices, capsys, text, message):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    code, err = run(tmp_path, *slices, capsys, "--params", str(params))
    assert code == 2 and message in err


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["check", "only-one.parquet"]) == 2
    assert main(["check", "a.parquet", "b.parquet", "--bogus"]) == 2
    assert main(["--help"]) == 0
    assert "usage: soil-drift" in capsys.readouterr().out


def test_existing_outputs_survive_bad_input(tmp_path, slices, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "drift.json").write_text('{"status": "pass"}')
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code = main(["check", str(empty), str(empty), "--out", str(out / "drift.json")])
    assert code == 2 and "file is empty" in capsys.readouterr().err
    assert (out / "drift.json").read_text() == '{"status": "pass"}'
