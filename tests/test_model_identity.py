"""What a model predicts travels with it: from params.yaml through the trainer to the model API.

A project whose target is pH (in pH units) trains a model registered as ``soil-ph`` whose metadata,
MLflow run, metrics file and API answers all say pH_target / pH; none of them is ever null.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from soil_contracts.model import ModelMetadata
from soil_trainer.cli import main as trainer
from tests.support import copy_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ph_project(tmp_path_factory, mlflow_server) -> Path:
    project = copy_project(tmp_path_factory.mktemp("ph") / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["prepare"].update(target="pH_target", unit="pH")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "SOILCI_GIT_REVISION": "identity-test"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        p = str(project / "params.yaml")
        assert trainer(["prepare", "--params", p, "--out-dir", str(project / "data")]) == 0
        assert trainer(["train", "--params", p, "--data-dir", str(project / "data"),
                        "--model-dir", str(project / "models" / "model")]) == 0
        assert trainer(["evaluate", "--params", p, "--model-dir", str(project / "models" / "model"),
                        "--benchmark", str(project / "data" / "benchmark.parquet"),
                        "--metrics", str(project / "metrics.json"), "--predictions", str(project / "pred.csv"),
                        "--plots-dir", str(project / "reports")]) == 0
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return project


def test_a_ph_model_carries_its_target_and_unit_in_metadata_run_and_metrics(ph_project, mlflow_server):
    from mlflow import MlflowClient

    meta = ModelMetadata.load(ph_project / "models" / "model" / "soilci.json")
    assert (meta.name, meta.target, meta.target_unit) == ("soil-ph", "pH_target", "pH")
    run = MlflowClient(tracking_uri=mlflow_server).get_run(meta.run_id)
    assert (run.data.tags["target"], run.data.tags["target_unit"]) == ("pH_target", "pH")
    metrics = json.loads((ph_project / "metrics.json").read_text())
    assert (metrics["target"], metrics["unit"]) == ("pH_target", "pH") and len(metrics["benchmark_sha256"]) == 64
    # The logged model carries soilci.json, so a registry download knows what it predicts.
    import mlflow.artifacts

    mlflow.set_tracking_uri(mlflow_server)
    copy = Path(mlflow.artifacts.download_artifacts(f"models:/{meta.model_id}", dst_path=str(ph_project / "dl")))
    assert ModelMetadata.load(copy / "soilci.json").target_unit == "pH"


def test_the_model_api_answers_with_the_target_and_its_unit(ph_project, monkeypatch):
    from soil_model_api.app import create_app
    from soil_model_api.config import get_settings

    monkeypatch.setenv("MODEL_DIR", str(ph_project / "models" / "model"))
    for var in ("MODEL_URI", "MODEL_API_REGISTERED_FILE"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as client:
            for _ in range(100):
                if client.get("/readyz").status_code == 200:
                    break
                import time

                time.sleep(0.1)
            info = client.get("/v1/model").json()
            assert (info["name"], info["target"], info["unit"]) == ("soil-ph", "pH_target", "pH")
            answer = client.post("/v1/predict", json={"spectra": [[20.0] * info["n_bands"]]}).json()
            assert (answer["target"], answer["unit"]) == ("pH_target", "pH")
    finally:
        get_settings.cache_clear()
