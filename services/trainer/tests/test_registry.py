"""register against a real MLflow server: main only, lineage tags, alias staging, one version per model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from soil_contracts.model import ModelMetadata
from soil_contracts.records import RegisteredVersion
from soil_trainer.cli import main
from soil_trainer.errors import TrackingError
from soil_trainer.registry import DIGEST_TAG, register
from soil_trainer.saved_model import model_digest


def test_register_refuses_off_main_and_creates_nothing(workspace, capsys):
    before = len(workspace.versions())
    assert main(workspace.register_args("--branch", "feature/new-batch")) == 2
    assert "only on the main branch" in capsys.readouterr().err
    assert len(workspace.versions()) == before


def test_registered_staging_model_predicts_like_the_local_model(workspace, tmp_path):
    import mlflow.artifacts

    from soil_contracts.model_file import check_digest, load_estimator

    name = workspace.model_name
    out = tmp_path / "registered.json"
    assert main(workspace.register_args("--branch", "main", "--out", str(out))) == 0
    registered = RegisteredVersion.load(out)
    assert registered.name == name and registered.alias == "staging"
    assert registered.uri == f"models:/{name}/{registered.version}"

    mv = workspace.client().get_model_version_by_alias(name, "staging")
    assert mv.version == registered.version
    meta = ModelMetadata.load(workspace.model_dir / "soilci.json")
    metrics = json.loads(workspace.metrics.read_text())
    assert mv.tags["git_revision"] == "0123abc"
    assert mv.tags["data_version"] == meta.data_version
    assert mv.tags[DIGEST_TAG] == model_digest(workspace.model_dir)
    assert float(mv.tags["metric.rmse"]) == metrics["rmse"]
    assert mv.run_id == meta.run_id == registered.run_id
    assert "production" not in workspace.client().get_registered_model(name).aliases

    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")[meta.bands]
    # The version holds the evaluated directory byte for byte: its digest is the tag every loader checks.
    location = workspace.client().get_model_version_download_uri(name, mv.version)
    download = Path(mlflow.artifacts.download_artifacts(location, dst_path=str(tmp_path / "dl"),
                                                        tracking_uri=workspace.tracking_uri))
    check_digest(download, mv.tags[DIGEST_TAG], f"models:/{name}/{mv.version}")
    served = load_estimator(download).predict(benchmark)
    local = load_estimator(workspace.model_dir).predict(benchmark)
    np.testing.assert_array_equal(np.asarray(served).reshape(-1), np.asarray(local).reshape(-1))


def quick_retrain(workspace, dest) -> tuple:
    """Train and evaluate a cheaper (so different) model into ``dest``; returns (model dir, metrics)."""
    params = yaml.safe_load(workspace.params.read_text())
    params["train"]["pls"].update(max_components=4, cv_folds=3)
    (dest / "params.yaml").write_text(yaml.safe_dump(params))
    model_dir, metrics = dest / "models" / "model", dest / "metrics.json"
    assert main(workspace.train_args(model_dir, dest / "params.yaml")) == 0
    assert main(workspace.evaluate_args(metrics, dest / "predictions.csv", model_dir)) == 0
    return model_dir, metrics


def test_registering_the_same_model_twice_creates_one_version_and_a_retrained_one_a_new(
    workspace, tmp_path, capsys, caplog
):
    caplog.set_level("INFO", logger="soil_trainer.registry")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert main(workspace.register_args("--branch", "main", "--out", str(first))) == 0
    count = len(workspace.versions())
    capsys.readouterr()
    caplog.clear()

    assert main(workspace.register_args("--branch", "main", "--out", str(second))) == 0
    assert capsys.readouterr().out.strip() == RegisteredVersion.load(first).version
    assert RegisteredVersion.load(second) == RegisteredVersion.load(first)
    assert len(workspace.versions()) == count
    assert "already registered" in caplog.text

    model_dir, metrics = quick_retrain(workspace, tmp_path)
    assert model_digest(model_dir) != model_digest(workspace.model_dir)
    third = tmp_path / "third.json"
    assert main(workspace.register_args("--branch", "main", "--out", str(third), model_dir=model_dir,
                                        metrics=metrics)) == 0
    retrained = RegisteredVersion.load(third)
    assert int(retrained.version) > int(RegisteredVersion.load(first).version)
    assert len(workspace.versions()) == count + 1
    staging = workspace.client().get_model_version_by_alias(workspace.model_name, "staging")
    assert staging.version == retrained.version and staging.tags[DIGEST_TAG] == model_digest(model_dir)


def test_model_digest_follows_names_and_bytes_not_the_folder(workspace, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(workspace.model_dir, copy)
    assert model_digest(copy) == model_digest(workspace.model_dir)
    (copy / "conda.yaml").rename(copy / "conda2.yaml")
    renamed = model_digest(copy)
    assert renamed != model_digest(workspace.model_dir)
    (copy / "conda2.yaml").write_bytes((copy / "conda2.yaml").read_bytes() + b"\n")
    assert model_digest(copy) != renamed


def test_register_logs_the_saved_model_when_the_server_does_not_know_its_run(workspace, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(workspace.model_dir, model_dir)
    meta = ModelMetadata.load(model_dir / "soilci.json")
    # e.g. trained against another store
    meta.model_copy(update={"run_id": "0" * 32, "model_id": "m-" + "0" * 32}).save(model_dir / "soilci.json")
    registered = register(model_dir, workspace.metrics, workspace.model_name, "staging", branch="main")
    mv = workspace.client().get_model_version(workspace.model_name, registered.version)
    assert mv.run_id == registered.run_id != meta.run_id
    assert workspace.client().get_run(mv.run_id).data.tags["data_version"] == meta.data_version


def test_failed_alias_move_deletes_the_new_version(workspace):
    before = {v.version for v in workspace.versions()}
    with pytest.raises(TrackingError, match="version deleted"):
        register(workspace.model_dir, workspace.metrics, workspace.model_name, alias="latest", branch="main")  # reserved
    assert {v.version for v in workspace.versions()} == before


def changed_copy(workspace, dest):
    """The trained model with one byte more in a file the digest covers: a new model, the same run."""
    shutil.copytree(workspace.model_dir, dest)
    (dest / "conda.yaml").write_bytes((dest / "conda.yaml").read_bytes() + b"\n")
    assert model_digest(dest) != model_digest(workspace.model_dir)
    return dest


def test_a_registry_dying_after_the_version_is_created_says_what_is_left_and_the_next_run_finishes_it(
    workspace, tmp_path, monkeypatch
):
    from mlflow import MlflowClient

    model_dir = changed_copy(workspace, tmp_path / "model")
    before = {v.version for v in workspace.versions()}

    def gone(*args, **kwargs):
        raise ConnectionError("Remote end closed connection without response")

    with monkeypatch.context() as dead:
        dead.setattr(MlflowClient, "set_registered_model_alias", gone)
        dead.setattr(MlflowClient, "delete_model_version", gone)
        with pytest.raises(TrackingError) as failed:
            register(model_dir, workspace.metrics, workspace.model_name, alias="fault", branch="main")
    (left,) = {v.version for v in workspace.versions()} - before
    message = str(failed.value)
    assert f"version {left} is left in the registry without alias 'fault'" in message
    assert "version deleted" not in message
    assert "fault" not in workspace.client().get_registered_model(workspace.model_name).aliases

    again = register(model_dir, workspace.metrics, workspace.model_name, alias="fault", branch="main")
    assert again.version == left and {v.version for v in workspace.versions()} - before == {left}
    assert workspace.client().get_model_version_by_alias(workspace.model_name, "fault").version == left


def test_transient_failures_reading_the_train_run_are_retried_never_relogged(workspace, tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("SOILCI_TRACKING_BACKOFF_S", "0")
    model_dir = changed_copy(workspace, tmp_path / "model")
    meta = ModelMetadata.load(model_dir / "soilci.json")
    experiment = workspace.client().get_run(meta.run_id).info.experiment_id
    original, calls = MlflowClient.get_run, []

    def flaky(self, run_id):
        calls.append(run_id)
        if len(calls) <= 2:
            raise MlflowException("too many 503 error responses", error_code="INTERNAL_ERROR")
        return original(self, run_id)

    monkeypatch.setattr(MlflowClient, "get_run", flaky)
    runs_before = workspace.client().search_runs([experiment])
    calls.clear()
    registered = register(model_dir, workspace.metrics, workspace.model_name, alias="flaky", branch="main")
    assert len(calls) == 3 and registered.run_id == meta.run_id
    runs_after = workspace.client().search_runs([experiment])
    assert len(runs_after) == len(runs_before)  # no second run of the same model


def test_a_registry_that_keeps_failing_on_the_train_run_is_unavailable_not_relogged(
    workspace, tmp_path, monkeypatch
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("SOILCI_TRACKING_BACKOFF_S", "0")
    model_dir = changed_copy(workspace, tmp_path / "model")
    before = len(workspace.versions())

    def down(self, run_id):
        raise MlflowException("too many 503 error responses", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(MlflowClient, "get_run", down)
    assert main(workspace.register_args("--branch", "main", model_dir=model_dir)) == 3
    assert len(workspace.versions()) == before
