"""Validating the pair: a missing, extra or incomplete column is exit 2, naming the file and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soil_drift.config import DriftParams, load_params
from soil_drift.inputs import validate_pair
from soil_drift.readers import Table, read_table
from tests.support import REPO_ROOT


def test_missing_column_is_named(slices, run_bad):
    ref, cand = slices
    code, err = run_bad(ref, cand.drop(columns=["SOC_target", "wl_700"]))
    assert code == 2 and "missing 2 columns of the reference" in err and "SOC_target, wl_700" in err


def test_candidate_with_other_columns_is_refused(slices, run_bad):
    ref, cand = slices
    code, err = run_bad(ref, cand.rename(columns={"wl_700": "wl_701"}))
    assert code == 2 and "wl_700" in err  # the first difference found: a reference band is missing
    code, err = run_bad(ref, cand.assign(pH_target=7.0))
    assert code == 2 and "1 columns are not in the reference" in err and "pH_target" in err


def test_missing_key_column_named_in_params(tmp_path, slices, run_bad):
    params = tmp_path / "params.yaml"
    params.write_text("drift:\n  key_column: Clay_target\n")
    code, err = run_bad(*slices, "--params", str(params))
    assert code == 2 and "missing column 'Clay_target' (drift.key_column)" in err


@pytest.mark.parametrize(("value", "word"), [(np.nan, "1 NaN/missing and 0 infinite"),
                                             (np.inf, "0 NaN/missing and 1 infinite")])
def test_nan_or_infinite_band_values_are_refused(slices, run_bad, value, word):
    ref, cand = slices
    bad = cand.copy()
    bad.loc[4, "wl_1000"] = value
    code, err = run_bad(ref, bad)
    assert code == 2 and f"column wl_1000 has {word} values (first at data row 5)" in err


def test_an_infinite_target_is_refused(slices, run_bad):
    ref, cand = slices
    bad = ref.copy()
    bad.loc[0, "SOC_target"] = np.inf  # a NaN here is a pending lab value, not an error (below)
    code, err = run_bad(bad, cand)
    assert code == 2 and "reference.parquet: column SOC_target has 1 infinite values (first at data row 1)" in err


def test_non_numeric_value_in_a_numeric_column(tmp_path: Path, slices, run_bad):
    ref, cand = slices
    text = tmp_path / "cand.csv"
    cand.astype({"wl_500": object}).assign(wl_500=lambda f: f["wl_500"].where(f.index != 2, "n/a?")).to_csv(
        text, index=False)
    code, err = run_bad(ref, text)
    assert code == 2 and "non-numeric value 'n/a?' in numeric column wl_500 (data row 3" in err
    bad = cand.astype({"SOC_target": str})  # a Parquet string column: numbers as text, one with a comma
    bad.loc[7, "SOC_target"] = "1,5"
    code, err = run_bad(ref, bad)
    assert code == 2 and "non-numeric value '1,5' in numeric column SOC_target" in err


def test_fewer_rows_than_the_tests_need(slices, run_bad):
    ref, cand = slices
    code, err = run_bad(ref, cand.head(19))
    assert code == 2 and "19 rows, fewer than the 20 the tests need (drift.min_rows)" in err


def test_columns_are_sorted_into_bands_numbers_and_labels(slices):
    ref, cand = slices
    ref = ref.assign(lab="A", depth_cm=np.arange(len(ref), dtype=float))
    cand = cand.assign(lab="B", depth_cm=np.arange(len(cand), dtype=float))
    inputs = validate_pair(Table.from_frame(ref, "ref"), Table.from_frame(cand, "cand"), DriftParams())
    assert inputs.bands[0] == "wl_350" and inputs.positions[0] == 350.0 and inputs.band_unit == "nm"
    assert inputs.reference_spectra.shape == (30, len(inputs.bands))
    assert inputs.reference_spectra.dtype == np.float32
    assert list(inputs.numeric) == ["SOC_target", "depth_cm"] and list(inputs.categorical) == ["lab"]
    assert inputs.key_column == "SOC_target"  # the first *_target column; sample_id is excluded


def test_wavenumber_bands_are_in_reciprocal_centimetres(slices):
    names = {"wl_500": "wn_4000", "wl_1000": "wn_3998.5"}
    ref, cand = (frame[["SOC_target", *names]].rename(columns=names) for frame in slices)
    inputs = validate_pair(Table.from_frame(ref, "ref"), Table.from_frame(cand, "cand"), DriftParams())
    assert inputs.band_unit == "cm-1" and list(inputs.positions) == [4000.0, 3998.5]


def test_missing_scalar_values_are_counted_and_left_out(tmp_path: Path, slices):
    ref, cand = slices
    cand = cand.copy()
    cand.loc[[3, 10, 17], "SOC_target"] = np.nan
    cand.to_csv(tmp_path / "cand.csv", index=False)  # empty cells in a CSV are missing values too
    for table in (Table.from_frame(cand, "cand"), read_table(tmp_path / "cand.csv")):
        inputs = validate_pair(Table.from_frame(ref, "ref"), table, DriftParams())
        ref_values, cand_values = inputs.numeric["SOC_target"]
        assert inputs.missing == {"SOC_target": (0, 3)} and (len(ref_values), len(cand_values)) == (30, 22)
        np.testing.assert_array_equal(cand_values, cand["SOC_target"].dropna().to_numpy())
        assert inputs.candidate_spectra.shape == (25, len(inputs.bands))  # every row's spectrum stays


def test_a_column_with_no_value_left_to_test_is_bad_input(slices, run_bad):
    ref, cand = (frame[["sample_id", "SOC_target"]] for frame in slices)
    code, err = run_bad(ref, cand.assign(SOC_target=np.nan))
    assert code == 2 and "nothing to test: SOC_target has no value in one of the files" in err


def test_batch_column_is_an_identifier_whatever_exclude_columns_says(slices):
    ref, cand = slices
    ref, cand = ref.assign(batch="ssp460-campaign-1"), cand.assign(batch="pending-lab")
    repo_params = load_params(REPO_ROOT / "params.yaml")
    assert "sample_id" in repo_params.exclude_columns
    for params in (DriftParams(), repo_params, DriftParams(exclude_columns=())):
        inputs = validate_pair(Table.from_frame(ref, "ref"), Table.from_frame(cand, "cand"), params)
        assert "batch" not in inputs.categorical and "batch" not in inputs.numeric
    assert list(inputs.categorical) == ["sample_id"]  # exclude_columns still decides the rest
    inputs = validate_pair(Table.from_frame(ref, "ref"), Table.from_frame(cand.drop(columns="batch"), "cand"),
                           DriftParams())
    assert inputs.categorical == {}  # like sample_id, batch need not be in both files
