"""Where spectra moved: Benjamini-Hochberg over bands, nearby significant bands merged into named regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soil_drift.cli import main
from soil_drift.regions import REGION_GAP, benjamini_hochberg, find_regions


def test_benjamini_hochberg_matches_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_bands_within_the_gap_form_one_region():
    bands = [f"wl_{400 + 2 * i}" for i in range(20)]
    positions = np.array([400.0 + 2 * i for i in range(20)])
    p_adj = np.ones(20)
    p_adj[[2, 3, 3 + REGION_GAP + 1, 15]] = [0.01, 0.001, 0.02, 0.0001]
    t = np.where(p_adj < 1, 5.0, 0.0)
    regions = find_regions(t, p_adj, t / 10, 0.025, bands, positions, "values")
    assert [r.name for r in regions] == ["wl_430", "wl_404..wl_412"]  # most significant first
    merged = regions[1]
    assert (merged.start, merged.end, merged.n_bands, merged.p_adjusted) == (404.0, 412.0, 5, 0.001)
    assert find_regions(t, np.ones(20), t, 0.025, bands, positions, "values") == []


def test_batch_from_another_field_fails_and_names_the_regions(tmp_path: Path):
    from LimeSoDa import load_dataset

    for name in ("SSP.58", "MG.44"):
        data = load_dataset(name)["Dataset"]
        data[["SOC_target", *[c for c in data.columns if c.startswith(("wl_", "wn_"))]]].to_parquet(
            tmp_path / f"{name}.parquet", index=False)
    out, plot = tmp_path / "drift.json", tmp_path / "drift.png"
    code = main(["check", str(tmp_path / "SSP.58.parquet"), str(tmp_path / "MG.44.parquet"),
                 "--out", str(out), "--plot", str(plot)])
    verdict = json.loads(out.read_text())
    assert code == 1
    assert verdict["status"] == "fail" and verdict["drift_detected"] is True
    kinds = {t["kind"] for t in verdict["top_drifted"]}
    assert {"component", "region"} <= kinds
    p_values = [t["p_value"] for t in verdict["top_drifted"]]
    assert p_values == sorted(p_values) and max(p_values) <= 0.05
    region = verdict["regions"][0]
    assert region["name"].startswith("wl_") and region["unit"] == "nm" and region["n_bands"] >= 1
    assert verdict["summary"].startswith("Drift:") and "spectra moved in" in verdict["summary"]
    assert plot.stat().st_size > 10_000
