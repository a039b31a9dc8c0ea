"""The check verb: the JSON verdict and the figure appear together, atomically, or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from soil_drift.cli import main
from soil_drift.config import DriftParams

CONTRACT_KEYS = {"status", "drift_detected", "method", "alpha", "summary", "top_drifted"}
PARAMS = DriftParams()


def test_default_split_passes_and_writes_the_contract(prepared_data, tmp_path: Path):
    out, plot = tmp_path / "reports" / "drift.json", tmp_path / "reports" / "drift.png"
    code = main(["check", str(prepared_data / "reference.parquet"), str(prepared_data / "incoming.parquet"),
                 "--out", str(out), "--plot", str(plot)])
    verdict = json.loads(out.read_text())
    assert code == 0
    assert CONTRACT_KEYS <= verdict.keys()
    assert verdict["status"] == "pass" and verdict["drift_detected"] is False
    assert verdict["top_drifted"] == [] and verdict["regions"] == []
    assert verdict["alpha"] == 0.025 and verdict["summary"].startswith("No drift")
    assert [c["name"] for c in verdict["columns"]] == ["SOC_target"]  # sample_id is never tested
    assert len(verdict["spectra"]["components"]) == PARAMS.n_components
    assert {f["name"] for f in verdict["spectra"]["features"]} >= {
        "spectral residual (Q)", "baseline offset", "gain", "wavelength shift", "all components (Hotelling T2)"}
    column = verdict["columns"][0]
    assert {"ks", "wasserstein", "psi"} <= column["effect"].keys() and column["test"] == "ks"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["drift.json", "drift.png"]  # no temp files left


def test_without_out_the_verdict_goes_to_stdout(slices, tmp_path: Path, capsys):
    for name, frame in zip(("ref", "cand"), slices, strict=True):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    assert main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "pass"
    assert captured.err.startswith("soil-drift check: pass: No drift")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cand.parquet", "ref.parquet"]


def test_existing_outputs_survive_bad_input(tmp_path, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "drift.json").write_text('{"status": "pass"}')
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code = main(["check", str(empty), str(empty), "--out", str(out / "drift.json")])
    assert code == 2 and "file is empty" in capsys.readouterr().err
    assert (out / "drift.json").read_text() == '{"status": "pass"}'


def test_an_unwritable_output_is_exit_2(slices, tmp_path: Path, capsys):
    for name, frame in zip(("ref", "cand"), slices, strict=True):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"),
                 "--out", str(blocker / "drift.json")])
    assert code == 2 and "cannot write output" in capsys.readouterr().err


def run_check(tmp_path: Path, ref: pd.DataFrame, cand: pd.DataFrame | Path, *extra: str) -> tuple[int, dict]:
    """Write both frames (a Path is used as is), run ``check`` with ``--out``; return the code and verdict."""
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    if not isinstance(cand, Path):
        cand.to_parquet(tmp_path / "cand.parquet", index=False)
        cand = tmp_path / "cand.parquet"
    out = tmp_path / "drift.json"
    code = main(["check", str(tmp_path / "ref.parquet"), str(cand), "--out", str(out), *extra])
    return code, json.loads(out.read_text())


def test_pending_lab_values_are_tested_on_the_values_present(reference, incoming, tmp_path: Path, capsys):
    """The pending-lab case: SSP.460 fold 3 (prepare's incoming rows) with no SOC value yet for 3 of 46."""
    ref = reference.assign(batch="ssp460-campaign-1")  # prepare's batch column: never tested
    pending = incoming.assign(batch="pending-lab")
    pending.loc[[3, 10, 17], "SOC_target"] = np.nan
    _, complete = run_check(tmp_path, ref, incoming)
    capsys.readouterr()
    code, verdict = run_check(tmp_path, ref, pending, "--plot", str(tmp_path / "drift.png"))
    assert code == 0 and verdict["status"] == "pass"
    assert verdict["reference"] == {"path": str(tmp_path / "ref.parquet"), "rows": 322, "missing": {"SOC_target": 0}}
    assert verdict["candidate"]["rows"] == 46 and verdict["candidate"]["missing"] == {"SOC_target": 3}
    [column] = verdict["columns"]  # SOC_target only: no test of the missing share, none of batch
    assert column["name"] == "SOC_target" and "43 of 46 candidate and 322 of 322 reference" in column["description"]
    assert column["p_value"] == pytest.approx(
        stats.ks_2samp(reference["SOC_target"], incoming["SOC_target"].drop([3, 10, 17])).pvalue)
    assert verdict["spectra"] == complete["spectra"]  # every spectrum is tested, pending or not
    assert verdict["tests"]["count"] == complete["tests"]["count"] and "untested" not in verdict
    missing = "Missing values (pending; each column tested on the values present): SOC_target 3 of 46 candidate"
    assert missing in verdict["summary"] and missing in capsys.readouterr().err
    assert (tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bands = [c for c in pending.columns if c.startswith("wl_")]
    code, verdict = run_check(tmp_path, ref, pending.assign(**{b: pending[b] * 1.2 for b in bands}))
    assert code == 1 and verdict["status"] == "fail" and verdict["candidate"]["missing"] == {"SOC_target": 3}


def test_a_target_missing_in_a_whole_file_is_listed_as_untested(reference, incoming, tmp_path: Path):
    code, verdict = run_check(tmp_path, reference, incoming.assign(SOC_target=np.nan),
                              "--plot", str(tmp_path / "drift.png"))
    assert code == 0 and verdict["status"] == "pass" and verdict["columns"] == []
    reason = "no value in the candidate: all 46 rows missing"
    assert verdict["untested"] == [{"name": "SOC_target", "kind": "column", "reason": reason}]
    assert verdict["candidate"]["missing"] == {"SOC_target": 46}
    assert f"Not tested: SOC_target ({reason})." in verdict["summary"]
    assert (tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("form", ["parquet", "csv header"])
def test_a_candidate_without_rows_is_no_candidate(slices, tmp_path: Path, capsys, form):
    ref, cand = slices
    if form == "csv header":
        cand.head(0).to_csv(tmp_path / "header.csv", index=False)
        cand = tmp_path / "header.csv"
    else:
        cand = cand.head(0)
    code, verdict = run_check(tmp_path, ref, cand, "--plot", str(tmp_path / "drift.png"))
    assert code == 0 and verdict["status"] == "no_candidate" and verdict["drift_detected"] is False
    assert verdict["summary"] == "No new samples relative to the base: nothing to test."
    assert verdict["tests"]["count"] == 0 and verdict["columns"] == [] and verdict["top_drifted"] == []
    assert verdict["reference"]["rows"] == 30 and verdict["candidate"]["rows"] == 0
    assert capsys.readouterr().err.startswith("soil-drift check: no_candidate: No new samples")
    assert (tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_candidate_row_is_still_bad_input(slices, run_bad):
    ref, cand = slices
    code, err = run_bad(ref, cand.head(1))
    assert code == 2 and "1 rows, fewer than the 20 the tests need (drift.min_rows)" in err


@pytest.mark.parametrize("bad", ["plot", "out"])
def test_an_output_naming_a_directory_writes_neither_output(slices, tmp_path: Path, capsys, bad):
    # shared/cases/cli/drift_outputs.sh: --plot plotdir.png (a directory) used to leave drift.json behind.
    for name, frame in zip(("ref", "cand"), slices, strict=True):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    outputs = {"out": tmp_path / "dd" / "drift.json", "plot": tmp_path / "dd" / "drift.png"}
    outputs[bad] = tmp_path / "plotdir.png"
    outputs[bad].mkdir()
    code = main(["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"),
                 "--out", str(outputs["out"]), "--plot", str(outputs["plot"])])
    assert code == 2
    assert f"{outputs[bad]}: cannot write output (Is a directory)" in capsys.readouterr().err
    assert not (tmp_path / "dd").exists()
    assert list(outputs[bad].iterdir()) == []
