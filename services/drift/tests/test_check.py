"""The check verb: the JSON verdict and the figure appear together, atomically, or not at all."""

from __future__ import annotations

import json
from pathlib import Path

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
