"""Drift attribution: a significant spectral effect and its range lead the headline, then the components."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from soilci.cli import main
from soilci.report.attribution import attribute, effects_first
from tests.report.results import git, run_report
from tests.support import add_batch

SPECTRA = {"first_band": "wl_350", "last_band": "wl_2495", "unit": "nm",
           "components": [{"name": "PC3", "drifted": True, "p_adjusted": 1e-3},
                          {"name": "PC1", "drifted": True, "p_adjusted": 1e-6},
                          {"name": "PC2", "drifted": False, "p_adjusted": 0.4}],
           "features": [{"name": "baseline offset", "drifted": True, "p_adjusted": 1e-2},
                        {"name": "gain", "drifted": False, "p_adjusted": 0.3}]}


def test_attribution_names_the_effect_and_its_range_then_the_components():
    assert attribute({"spectra": SPECTRA}) == "baseline offset across 350-2495 nm, then PC1, PC3"
    regions = [{"start": 1900.0, "end": 2000.0, "unit": "nm", "p_adjusted": 0.01},
               {"start": 400.0, "end": 580.0, "unit": "nm", "p_adjusted": 1e-4}]
    assert attribute({"spectra": SPECTRA, "regions": regions}) == \
        "baseline offset across 350-2495 nm, strongest in 400-580 nm, then PC1, PC3"
    no_effect = {**SPECTRA, "features": [{"name": "gain", "drifted": False}]}
    assert attribute({"spectra": no_effect}) == ""


def test_a_drifted_spectrum_level_leads_the_headline_with_its_size():
    level = {"name": "spectrum level", "drifted": True, "p_adjusted": 1e-3,
             "effect": {"level_change": 0.0412, "level_change_low": 0.02, "level_change_high": 0.062}}
    only_level = {**SPECTRA, "features": [level, {"name": "gain", "drifted": False}]}
    assert attribute({"spectra": only_level}) == (
        "spectra are 4.1% higher (brighter, in reflectance) on average than the reference, then PC1, PC3")
    both = {**SPECTRA, "features": [*SPECTRA["features"], {**level, "effect": {"level_change": -0.05}}]}
    assert attribute({"spectra": both}) == ("spectra are 5.0% lower (darker, in reflectance) on average than the "
                                            "reference; baseline offset across 350-2495 nm, then PC1, PC3")
    top = [{"name": "PC1"}, {"name": "wavelength shift"}, {"name": "PC3"}]
    assert [t["name"] for t in effects_first(top)] == ["wavelength shift", "PC1", "PC3"]


@pytest.mark.slow
def test_an_offset_batch_is_blocked_with_the_offset_named_first(project, prepared_data, capsys, monkeypatch):
    """Real runs: a PR adds a batch whose spectra carry a flat baseline offset; the drift gate fails."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    git(root, "checkout", "-qb", "offset")
    batch = pd.read_parquet(prepared_data / "incoming.parquet")
    bands = [c for c in batch.columns if c.startswith("wl_")]
    batch[bands] = batch[bands] + 0.03 * batch[bands].to_numpy().mean()  # a flat offset of 3% of the mean
    add_batch(root, "lab-offset", batch)
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 1
    drift = json.loads((root / "reports" / "drift.json").read_text())
    assert drift["status"] == "fail" and drift["summary"].startswith("Drift: baseline offset ")
    capsys.readouterr()
    code, md, err = run_report(root, "main", capsys)
    assert code == 1, err
    first = md.splitlines()[0]
    assert first.startswith("## 🔴 Do not merge: drift: baseline offset "), first
    assert first.index("baseline offset") < first.index("across 350-2495 nm") < first.index("PC")
    assert "· Top drifted: baseline offset (p=" in md
