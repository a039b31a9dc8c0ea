"""The drift gate on real LimeSoDa spectra: honest splits pass, subtle instrument changes fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soil_drift.cli import main
from soil_drift.config import DriftParams
from soil_drift.gate import check_drift
from soil_drift.inputs import validate_pair
from soil_drift.readers import Table

PARAMS = DriftParams()


def bands_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(("wl_", "wn_"))]


def with_bands(frame: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    out = frame.copy()
    out[bands_of(frame)] = values
    return out


def gate(reference: pd.DataFrame, candidate: pd.DataFrame, params: DriftParams = PARAMS):
    inputs = validate_pair(Table.from_frame(reference, "reference"), Table.from_frame(candidate, "candidate"),
                           params)
    return check_drift(inputs, params)


@pytest.fixture(scope="module")
def ssp460(prepared_data) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(prepared_data / f"{n}.parquet") for n in ("reference", "benchmark",
                                                                               "incoming")], ignore_index=True)


def test_honest_random_halves_are_rarely_flagged(ssp460):
    rng = np.random.default_rng(12)
    flagged = []
    for _ in range(8):
        idx = rng.permutation(len(ssp460))
        half = len(idx) // 2
        flagged.append(gate(ssp460.iloc[idx[:half]], ssp460.iloc[idx[half:]]).drift_detected)
    assert sum(flagged) <= 1, flagged


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda x: x + 0.01 * x.mean(), "baseline offset"),
        (lambda x: x * 1.05, "spectral residual (Q)"),
        (lambda x: np.concatenate([x[:, :1], x[:, :-1]], axis=1), None),  # big enough to move components
    ],
    ids=["offset-1pct", "gain-5pct", "one-band-shift"],
)
def test_gate_flags_subtle_instrument_changes_on_half_a_split(ssp460, change, expected: str | None):
    rng = np.random.default_rng(3)
    idx = rng.permutation(len(ssp460))
    half = len(idx) // 2
    ref, cand = ssp460.iloc[idx[:half]], ssp460.iloc[idx[half:]]
    assert not gate(ref, cand).drift_detected
    shifted = with_bands(cand, change(cand[bands_of(cand)].to_numpy()))
    verdict = gate(ref, shifted)
    assert verdict.status == "fail"
    assert {t.kind for t in verdict.drifted_tests} == {"component"}  # the property did not move
    if expected is not None:
        assert expected in {t.name for t in verdict.drifted_tests}


def test_warn_only_reports_warn_and_exits_0(reference, incoming, tmp_path: Path):
    shifted = with_bands(incoming, incoming[bands_of(incoming)].to_numpy() * 1.2)
    reference.to_parquet(tmp_path / "ref.parquet")
    shifted.to_parquet(tmp_path / "cand.parquet")
    args = ["check", str(tmp_path / "ref.parquet"), str(tmp_path / "cand.parquet"), "--out", str(tmp_path / "d.json")]
    assert main(args) == 1
    assert json.loads((tmp_path / "d.json").read_text())["status"] == "fail"
    assert main([*args, "--warn-only"]) == 0
    verdict = json.loads((tmp_path / "d.json").read_text())
    assert verdict["status"] == "warn" and verdict["drift_detected"] is True and verdict["warn_only"] is True

    (tmp_path / "params.yaml").write_text("drift:\n  on_drift: warn\n")
    assert main([*args, "--params", str(tmp_path / "params.yaml")]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["status"] == "warn"


def test_categorical_and_scalar_covariates_are_tested_per_column(reference, incoming):
    rng = np.random.default_rng(0)
    ref = reference.assign(lab=rng.choice(["A", "B"], len(reference)), depth_cm=rng.normal(20, 5, len(reference)))
    cand = incoming.assign(lab=rng.choice(["B", "C"], len(incoming)), depth_cm=rng.normal(20, 5, len(incoming)))
    verdict = gate(ref, cand)
    by_name = {t.name: t for t in verdict.tests}
    assert by_name["lab"].test == "chi2" and by_name["lab"].drifted(0.05)
    assert {"psi", "cramers_v"} <= by_name["lab"].effect.keys()
    assert by_name["depth_cm"].test == "ks" and not by_name["depth_cm"].drifted(0.05)
    assert verdict.top_drifted()[0]["name"] == "lab"


def test_spectra_only_inputs_and_a_single_band_work(reference, incoming):
    verdict = gate(reference.drop(columns=["SOC_target"]), incoming.drop(columns=["SOC_target"]))
    assert verdict.status == "pass" and verdict.inputs.key_column is None
    few = gate(reference[["SOC_target", "wl_500"]], incoming[["SOC_target", "wl_500"]])
    assert {t.name for t in few.tests} == {"SOC_target", "wl_500"}


def test_a_library_without_reference_batches_is_not_compared_and_says_so(tmp_path, prepared_data):
    """The base has no library yet: the candidate cannot be compared, exit 0, status no_reference."""
    import json

    import pandas as pd

    from soil_drift.cli import main

    reference = pd.read_parquet(prepared_data / "reference.parquet").head(0)
    reference.to_parquet(tmp_path / "reference.parquet", index=False)
    out = tmp_path / "drift.json"
    code = main(["check", str(tmp_path / "reference.parquet"), str(prepared_data / "incoming.parquet"),
                 "--out", str(out), "--plot", str(tmp_path / "drift.png")])
    verdict = json.loads(out.read_text())
    assert code == 0 and verdict["status"] == "no_reference" and verdict["tests"]["count"] == 0
    assert "No trusted reference yet" in verdict["summary"] and (tmp_path / "drift.png").stat().st_size > 0


def test_a_significant_spectral_effect_leads_the_summary_with_its_range(ssp460):
    """An offset batch: the summary names the offset and where it shows before any component."""
    rng = np.random.default_rng(3)
    idx = rng.permutation(len(ssp460))
    half = len(idx) // 2
    ref, cand = ssp460.iloc[idx[:half]], ssp460.iloc[idx[half:]]
    values = cand[bands_of(cand)].to_numpy()
    verdict = gate(ref, with_bands(cand, values + 0.01 * values.mean()))
    assert "baseline offset" in {t.name for t in verdict.drifted_tests}
    assert verdict.summary.startswith("Drift: baseline offset ")
    lead, rest = verdict.summary.split(", a spectral effect (instrument or sample preparation), then the rest: ")
    assert " across 350-2495 nm" in lead and "PC" not in lead
    assert rest.split(") significant")[1].split("(")[1].startswith("baseline offset")  # listed first
