"""The prepare stage: the spectral library split into the stage inputs; bad params and batches fail cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from soil_trainer.cli import main
from tests.support import PR_BATCH, copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def set_params(project: Path, section: str, **values) -> Path:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params))
    return path


def prepare(project: Path, *extra: str) -> int:
    return main(["prepare", "--params", str(project / "params.yaml"), "--out-dir", str(project / "data"), *extra])


def test_prepare_splits_the_library_into_reference_candidate_training_and_benchmark(prepared_data: Path):
    ref, inc, train, bench = (pd.read_parquet(prepared_data / f"{n}.parquet")
                              for n in ("reference", "incoming", "training", "benchmark"))
    assert (len(ref), len(inc), len(train), len(bench)) == (322, 46, 368, 92)
    assert list(ref.columns[:4]) == ["sample_id", "batch", "SOC_target", "wl_350"]
    assert sum(c.startswith("wl_") for c in ref.columns) == 430
    assert set(inc["batch"]) == {PR_BATCH} and set(ref["batch"]) == {"ssp460-campaign-1"}
    assert not set(train["sample_id"]) & set(bench["sample_id"])
    assert list(ref.columns) == list(bench.columns) == list(inc.columns) == list(train.columns)
    summary = json.loads((prepared_data / "library.json").read_text())
    assert {b["id"]: b["status"] for b in summary["batches"]} == {"ssp460-campaign-1": "unchanged", PR_BATCH: "added"}
    assert (summary["target"], summary["unit"]) == ("SOC_target", "%")


def test_prepare_is_deterministic(project: Path, prepared_data: Path):
    assert prepare(project) == 0
    for name in ("reference", "incoming", "training", "benchmark"):
        pd.testing.assert_frame_equal(pd.read_parquet(project / "data" / f"{name}.parquet"),
                                      pd.read_parquet(prepared_data / f"{name}.parquet"))


@pytest.mark.parametrize(
    ("section", "override", "needle"),
    [
        ("prepare", {"target": "Sand_target"}, "no target 'Sand_target'"),
        ("prepare", {"unit": "g/kg"}, "SOC_target is in '%', params.yaml prepare.unit says 'g/kg'"),
        ("prepare", {"colour": "blue"}, "prepare.colour"),
        ("library", {"scale": "absorbance"}, "stored as wavelength_nm/reflectance_percent"),
        ("library", {"grid": {"start": 350, "stop": 2495, "step": 10}},
         "are not the 215 of params.yaml library.grid (wl_350-wl_2490, step 10 nm)"),
        ("library", {"duplicate_rms": -1}, "library.duplicate_rms"),
    ],
)
def test_prepare_rejects_bad_params_naming_the_key_and_writes_nothing(project: Path, capsys, section, override,
                                                                     needle):
    set_params(project, section, **override)
    assert prepare(project) == 2
    assert needle in capsys.readouterr().err
    assert not (project / "data").exists()


def test_prepare_needs_the_base_listing_and_names_who_writes_it(project: Path, capsys):
    (project / ".soilci" / "base.json").unlink()
    assert prepare(project) == 2
    assert "soilci pipeline --base REF" in capsys.readouterr().err


def test_prepare_refuses_a_library_without_benchmark_or_batches(project: Path, capsys):
    import shutil

    shutil.rmtree(project / "library" / "batches")
    assert prepare(project) == 2
    assert "no batches to train on" in capsys.readouterr().err
    shutil.rmtree(project / "library" / "benchmark")
    assert prepare(project) == 2
    assert "no benchmark set" in capsys.readouterr().err


def test_prepare_rejects_missing_params_file(tmp_path: Path, capsys):
    assert main(["prepare", "--params", str(tmp_path / "nope.yaml"), "--out-dir", str(tmp_path / "d")]) == 2
    assert "nope.yaml: params file not found" in capsys.readouterr().err
