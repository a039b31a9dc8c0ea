"""The prepare stage: real LimeSoDa data cut by its own folds; bad params and files fail cleanly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from soil_trainer.cli import main
from tests.support import REPO_ROOT


def write_params(tmp_path: Path, **prepare) -> Path:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["prepare"].update(prepare)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_prepare_splits_default_dataset_by_limesoda_folds(prepared_data: Path):
    ref, bench, inc = (pd.read_parquet(prepared_data / f"{n}.parquet") for n in ("reference", "benchmark", "incoming"))
    assert (len(ref), len(bench), len(inc)) == (322, 92, 46)
    assert list(ref.columns[:3]) == ["sample_id", "SOC_target", "wl_350"]
    assert sum(c.startswith("wl_") for c in ref.columns) == 830
    ids = [set(f["sample_id"]) for f in (ref, bench, inc)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert list(ref.columns) == list(bench.columns) == list(inc.columns)


def test_prepare_is_deterministic(tmp_path: Path, prepared_data: Path):
    assert main(["prepare", "--params", str(write_params(tmp_path)), "--out-dir", str(tmp_path / "d")]) == 0
    for name in ("reference", "benchmark", "incoming"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "d" / f"{name}.parquet"), pd.read_parquet(prepared_data / f"{name}.parquet")
        )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"dataset": "XYZ.1"}, "prepare.dataset: unknown LimeSoDa dataset 'XYZ.1'"),
        ({"target": "Sand_target"}, "prepare.target: 'Sand_target' is not a target of SSP.460"),
        ({"dataset": "BB.250"}, "prepare.dataset: BB.250 has no spectral bands"),
        ({"benchmark_folds": [11]}, "prepare.benchmark_folds"),
        ({"incoming_folds": [1]}, "prepare.incoming_folds: folds [1] are also benchmark folds"),
        ({"colour": "blue"}, "prepare.colour"),
    ],
)
def test_prepare_rejects_bad_params_naming_the_key(tmp_path: Path, capsys, override, needle):
    out = tmp_path / "data"
    assert main(["prepare", "--params", str(write_params(tmp_path, **override)), "--out-dir", str(out)]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_prepare_rejects_missing_params_file(tmp_path: Path, capsys):
    assert main(["prepare", "--params", str(tmp_path / "nope.yaml"), "--out-dir", str(tmp_path / "d")]) == 2
    assert "nope.yaml: params file not found" in capsys.readouterr().err


def test_prepare_takes_a_batch_file_as_the_incoming_set(tmp_path: Path, prepared_data: Path):
    batch = pd.read_parquet(prepared_data / "incoming.parquet").head(10).drop(columns="sample_id")
    (tmp_path / "batches").mkdir()
    batch.to_csv(tmp_path / "batches" / "new.csv", index=False)
    params = write_params(tmp_path, incoming_batch="batches/new.csv")
    assert main(["prepare", "--params", str(params), "--out-dir", str(tmp_path / "d")]) == 0
    inc = pd.read_parquet(tmp_path / "d" / "incoming.parquet")
    ref = pd.read_parquet(tmp_path / "d" / "reference.parquet")
    assert len(inc) == 10 and list(inc["sample_id"][:2]) == ["new:0", "new:1"]
    assert len(ref) == 368  # the incoming folds stay in the reference set when a batch replaces them


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "batches/bad.csv: file is empty"),
        (b"SOC_target,wl_350\n1.0,0.2\n", "batches/bad.csv: missing 829 required columns"),
        (b"\x00\x01garbage", "batches/bad.parquet: cannot read"),
    ],
)
def test_prepare_rejects_bad_batch_files_and_writes_nothing(tmp_path: Path, capsys, content, needle):
    name = "bad.parquet" if "parquet" in needle else "bad.csv"
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / name).write_bytes(content)
    out = tmp_path / "d"
    assert main(["prepare", "--params", str(write_params(tmp_path, incoming_batch=f"batches/{name}")),
                 "--out-dir", str(out)]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_prepare_names_a_missing_batch_file(tmp_path: Path, capsys):
    params = write_params(tmp_path, incoming_batch="batches/gone.parquet")
    assert main(["prepare", "--params", str(params), "--out-dir", str(tmp_path / "d")]) == 2
    assert "batches/gone.parquet: file not found" in capsys.readouterr().err
