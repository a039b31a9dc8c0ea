"""The CLI boundary: usage errors exit 2, a drift verdict 1, a crash 70 (never 1)."""

from __future__ import annotations

import pandas as pd

from soil_drift import check
from soil_drift.cli import main


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["check", "only-one.parquet"]) == 2
    assert main(["check", "a.parquet", "b.parquet", "--bogus"]) == 2
    assert main(["--help"]) == 0
    assert "usage: soil-drift" in capsys.readouterr().out


def test_a_crash_is_exit_70_not_a_verdict(slices, tmp_path, monkeypatch, capsys):
    for name, frame in zip(("ref", "cand"), slices, strict=True):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(check, "check_drift", broken)
    code = main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"),
                 "--out", str(tmp_path / "drift.json")])
    err = capsys.readouterr().err
    assert code == 70 and "internal error" in err and "ZeroDivisionError: a bug" in err
    assert not (tmp_path / "drift.json").exists()


def test_a_pandas_read_error_that_escapes_is_exit_2_naming_the_file(tmp_path, monkeypatch, capsys):
    gone = tmp_path / "gone.csv"
    monkeypatch.setattr(check, "load_inputs", lambda *args: pd.read_csv(gone))
    code = main(["check", "a.parquet", "b.parquet"])
    err = capsys.readouterr().err
    assert code == 2 and f"soil-drift check: error: {gone}: cannot read (FileNotFoundError" in err


def test_a_missing_extra_is_exit_2_naming_it_before_anything_is_read(slices, tmp_path, monkeypatch, capsys):
    """Plain `soil-drift` (the model API's install) has no file readers or plot; the CLI says which extra to add."""
    import sys

    for name, frame in zip(("ref", "cand"), slices, strict=True):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    args = ["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"), "--out", str(tmp_path / "d.json")]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` finds when it is not installed
    code = main([*args, "--plot", str(tmp_path / "d.png")])
    err = capsys.readouterr().err
    assert code == 2 and "--plot needs matplotlib" in err and "soil-drift[plot]" in err
    assert not (tmp_path / "d.json").exists()
    assert main(args) == 0  # without --plot the gate runs

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(args) == 2
    assert "reading the input files needs pyarrow" in capsys.readouterr().err
