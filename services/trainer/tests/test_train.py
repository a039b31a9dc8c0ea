"""train: the model directory and soilci.json it writes, and the MLflow run it logs."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from soil_contracts.model import ModelMetadata

CONTRACT_META = {"name", "version", "git_revision", "data_version", "target", "bands", "metrics"}


def test_model_directory_follows_the_contract(workspace):
    assert CONTRACT_META <= set(json.loads((workspace.model_dir / "soilci.json").read_text()))
    meta = ModelMetadata.load(workspace.model_dir / "soilci.json")
    assert meta.version is None and meta.name == "soil-soc"  # derived from the target: register.model_name is null
    assert (meta.target, meta.target_unit, meta.scale) == ("SOC_target", "%", "reflectance_percent")
    assert meta.git_revision == "0123abc"
    reference = pd.read_parquet(workspace.data / "reference.parquet")
    assert meta.bands == [c for c in reference.columns if c.startswith("wl_")]
    assert (workspace.model_dir / "MLmodel").exists() and (workspace.model_dir / "model.skops").exists()
    from mlflow.models import Model

    inputs = Model.load(str(workspace.model_dir)).signature.inputs.to_dict()
    assert [c["name"] for c in inputs] == meta.bands
    assert {c["type"] for c in inputs} == {"double"}
    assert not [p for p in workspace.model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_rows_with_a_missing_target_are_dropped_and_counted(workspace):
    meta = ModelMetadata.load(workspace.model_dir / "soilci.json")
    training = pd.read_parquet(workspace.data / "training.parquet")
    assert meta.metrics["n_dropped"] == workspace.n_missing
    assert meta.metrics["n_train"] == len(training) - workspace.n_missing
    metrics = json.loads(workspace.metrics.read_text())
    assert metrics["n_dropped"] == workspace.n_missing and metrics["n_train"] == meta.metrics["n_train"]


def test_training_run_logs_params_metrics_lineage_and_model(workspace):
    meta = ModelMetadata.load(workspace.model_dir / "soilci.json")
    run = workspace.client().get_run(meta.run_id)
    files = {name: hashlib.md5((workspace.data / name).read_bytes()).hexdigest()
             for name in ("training.parquet",)}
    assert meta.data_files == files
    assert run.data.params["data_version"] == meta.data_version
    assert run.data.params["data.training.parquet.md5"] == files["training.parquet"]
    assert (run.data.tags["target"], run.data.tags["target_unit"]) == ("SOC_target", "%")
    assert run.data.params["train.model"] == "pls"
    assert run.data.params["best.n_components"] == str(meta.best_params["n_components"])
    assert run.data.tags["git_revision"] == "0123abc"
    assert run.data.metrics["cv_rmse"] == pytest.approx(meta.metrics["cv_rmse"])
    assert run.info.experiment_id == workspace.client().get_experiment_by_name("trainer-tests").experiment_id
    logged = workspace.client().get_logged_model(meta.model_id)
    assert logged.source_run_id == meta.run_id
