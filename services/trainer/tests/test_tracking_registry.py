"""train -> evaluate -> register against a real MLflow server (SQLite backend, artifacts on disk)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from soil_trainer.cli import main
from soil_trainer.config import get_settings

CONTRACT_METRICS = {"rmse", "mae", "bias", "r2", "rpd", "rpiq", "n_benchmark", "n_train", "n_dropped"}
CONTRACT_META = {"name", "version", "git_revision", "data_version", "target", "bands", "metrics"}
MODEL_NAME = "soil-carbon-trainer-tests"  # own name: other suites share the session's server
N_MISSING = 3  # incoming rows whose target is blanked to exercise the drop-and-count rule


@dataclass(frozen=True)
class Workspace:
    root: Path
    params: Path
    data: Path
    model_dir: Path
    metrics: Path
    predictions: Path
    plots: Path
    tracking_uri: str

    def evaluate_args(self, metrics: Path | None = None, predictions: Path | None = None) -> list[str]:
        return [
            "evaluate", "--params", str(self.params), "--model-dir", str(self.model_dir),
            "--benchmark", str(self.data / "benchmark.parquet"),
            "--metrics", str(metrics or self.metrics), "--predictions", str(predictions or self.predictions),
            "--plots-dir", str(self.plots),
        ]

    def register_args(self, *extra: str) -> list[str]:
        return [
            "register", "--params", str(self.params), "--model-dir", str(self.model_dir),
            "--metrics", str(self.metrics), "--name", MODEL_NAME, *extra,
        ]


@pytest.fixture(scope="module")
def env():
    """Environment and MLflow globals as the CLI sets them, restored afterwards."""
    import mlflow

    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, prepared_data, mlflow_server, repo_root, env) -> Workspace:
    root = tmp_path_factory.mktemp("trainer")
    data = root / "data"
    shutil.copytree(prepared_data, data)
    incoming = pd.read_parquet(data / "incoming.parquet")
    incoming.loc[: N_MISSING - 1, "SOC_target"] = np.nan
    incoming.to_parquet(data / "incoming.parquet", index=False)
    params = root / "params.yaml"
    shutil.copy(repo_root / "params.yaml", params)
    env.update(
        {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": "trainer-tests", "SOILCI_GIT_REVISION": "0123abc"}
    )
    get_settings.cache_clear()
    ws = Workspace(
        root=root, params=params, data=data, model_dir=root / "models" / "model",
        metrics=root / "metrics" / "metrics.json", predictions=root / "metrics" / "predictions.csv",
        plots=root / "reports", tracking_uri=mlflow_server,
    )
    assert main(["train", "--params", str(params), "--data-dir", str(data), "--model-dir", str(ws.model_dir)]) == 0
    assert main(ws.evaluate_args()) == 0
    return ws


def client(ws: Workspace):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.tracking_uri)


def versions(ws: Workspace) -> list:
    return client(ws).search_model_versions(f"name='{MODEL_NAME}'")


def test_model_directory_follows_the_contract(workspace):
    meta = json.loads((workspace.model_dir / "soilci.json").read_text())
    assert CONTRACT_META <= set(meta)
    assert meta["version"] is None and meta["name"] == "soil-carbon"
    assert meta["git_revision"] == "0123abc"
    reference = pd.read_parquet(workspace.data / "reference.parquet")
    assert meta["bands"] == [c for c in reference.columns if c.startswith("wl_")]
    assert (workspace.model_dir / "MLmodel").exists() and (workspace.model_dir / "model.pkl").exists()
    from mlflow.models import Model

    inputs = Model.load(str(workspace.model_dir)).signature.inputs.to_dict()
    assert [c["name"] for c in inputs] == meta["bands"]
    assert {c["type"] for c in inputs} == {"double"}
    assert not [p for p in workspace.model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_rows_with_a_missing_target_are_dropped_and_counted(workspace):
    meta = json.loads((workspace.model_dir / "soilci.json").read_text())
    reference = pd.read_parquet(workspace.data / "reference.parquet")
    incoming = pd.read_parquet(workspace.data / "incoming.parquet")
    assert meta["metrics"]["n_dropped"] == N_MISSING
    assert meta["metrics"]["n_train"] == len(reference) + len(incoming) - N_MISSING
    metrics = json.loads(workspace.metrics.read_text())
    assert metrics["n_dropped"] == N_MISSING and metrics["n_train"] == meta["metrics"]["n_train"]


def test_training_run_logs_params_metrics_lineage_and_model(workspace):
    meta = json.loads((workspace.model_dir / "soilci.json").read_text())
    run = client(workspace).get_run(meta["run_id"])
    files = {name: hashlib.md5((workspace.data / name).read_bytes()).hexdigest()
             for name in ("reference.parquet", "incoming.parquet")}
    assert meta["data_files"] == files
    assert run.data.params["data_version"] == meta["data_version"]
    assert run.data.params["data.reference.parquet.md5"] == files["reference.parquet"]
    assert run.data.params["train.model"] == "pls"
    assert run.data.params["best.n_components"] == str(meta["best_params"]["n_components"])
    assert run.data.tags["git_revision"] == "0123abc"
    assert run.data.metrics["cv_rmse"] == pytest.approx(meta["metrics"]["cv_rmse"])
    logged = client(workspace).get_logged_model(meta["model_id"])
    assert logged.source_run_id == meta["run_id"]


def test_evaluate_writes_contract_metrics_predictions_and_plots(workspace):
    metrics = json.loads(workspace.metrics.read_text())
    assert set(metrics) == CONTRACT_METRICS
    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")
    predictions = pd.read_csv(workspace.predictions)
    assert list(predictions.columns) == ["sample_id", "observed", "predicted", "residual"]
    assert predictions["sample_id"].tolist() == benchmark["sample_id"].tolist()
    np.testing.assert_allclose(predictions["residual"], predictions["observed"] - predictions["predicted"], atol=2e-6)
    rmse = float(np.sqrt(np.mean(predictions["residual"] ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse, abs=1e-5)
    assert metrics["rpd"] == pytest.approx(benchmark["SOC_target"].std() / metrics["rmse"], rel=1e-4)
    assert metrics["n_benchmark"] == len(benchmark) == 92
    for name in ("prediction_error.png", "predicted_vs_observed.png"):
        assert (workspace.plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    histogram = pd.read_csv(workspace.plots / "prediction_error.csv")
    assert histogram["count"].sum() == len(benchmark)


def test_evaluate_twice_gives_identical_files(workspace, tmp_path):
    assert main(workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")) == 0
    assert (tmp_path / "m.json").read_bytes() == workspace.metrics.read_bytes()
    assert (tmp_path / "p.csv").read_bytes() == workspace.predictions.read_bytes()


def test_benchmark_rows_without_a_target_are_dropped_and_counted(workspace, tmp_path):
    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")
    benchmark.loc[[0, 7], "SOC_target"] = np.nan
    benchmark.to_parquet(tmp_path / "benchmark.parquet", index=False)
    args = workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")
    args[args.index("--benchmark") + 1] = str(tmp_path / "benchmark.parquet")
    assert main(args) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_benchmark"] == len(benchmark) - 2
    assert metrics["n_dropped"] == N_MISSING + 2
    kept = pd.read_csv(tmp_path / "p.csv")["sample_id"].tolist()
    assert kept == benchmark["sample_id"].drop(index=[0, 7]).tolist()


def test_rmse_above_its_ceiling_fails_the_gate_after_writing_metrics(workspace, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(workspace.params.read_text().replace("rmse_max: null", "rmse_max: 0.1"))
    args = workspace.evaluate_args(tmp_path / "m.json", tmp_path / "p.csv")
    args[args.index("--params") + 1] = str(params)
    assert main(args) == 1
    assert "above evaluate.rmse_max 0.1" in capsys.readouterr().err
    assert json.loads((tmp_path / "m.json").read_text())["rmse"] > 0.1


def test_register_refuses_off_main_and_creates_nothing(workspace, capsys):
    before = len(versions(workspace))
    assert main(workspace.register_args("--branch", "feature/new-batch")) == 2
    assert "only on the main branch" in capsys.readouterr().err
    assert len(versions(workspace)) == before


def test_registered_staging_model_predicts_like_the_local_model(workspace, tmp_path):
    import mlflow.pyfunc
    import mlflow.sklearn

    out = tmp_path / "registered.json"
    assert main(workspace.register_args("--branch", "main", "--out", str(out))) == 0
    registered = json.loads(out.read_text())
    assert registered["name"] == MODEL_NAME and registered["alias"] == "staging"
    assert registered["uri"] == f"models:/{MODEL_NAME}/{registered['version']}"

    mv = client(workspace).get_model_version_by_alias(MODEL_NAME, "staging")
    assert mv.version == registered["version"]
    meta = json.loads((workspace.model_dir / "soilci.json").read_text())
    metrics = json.loads(workspace.metrics.read_text())
    assert mv.tags["git_revision"] == "0123abc"
    assert mv.tags["data_version"] == meta["data_version"]
    assert float(mv.tags["metric.rmse"]) == metrics["rmse"]
    assert mv.run_id == meta["run_id"]
    assert "production" not in client(workspace).get_registered_model(MODEL_NAME).aliases

    benchmark = pd.read_parquet(workspace.data / "benchmark.parquet")[meta["bands"]]
    served = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@staging").predict(benchmark)
    local = mlflow.sklearn.load_model(str(workspace.model_dir)).predict(benchmark)
    np.testing.assert_array_equal(np.asarray(served).reshape(-1), np.asarray(local).reshape(-1))


def test_register_logs_the_saved_model_when_the_server_does_not_know_its_run(workspace, tmp_path):
    from soil_trainer.registry import register

    model_dir = tmp_path / "model"
    shutil.copytree(workspace.model_dir, model_dir)
    meta = json.loads((model_dir / "soilci.json").read_text())
    meta.update(run_id="0" * 32, model_id="m-" + "0" * 32)  # e.g. trained against another store
    (model_dir / "soilci.json").write_text(json.dumps(meta))
    registered = register(model_dir, workspace.metrics, MODEL_NAME, branch="main")
    mv = client(workspace).get_model_version(MODEL_NAME, registered.version)
    assert mv.run_id == registered.run_id != meta["run_id"]
    assert client(workspace).get_run(mv.run_id).data.tags["data_version"] == meta["data_version"]


def test_failed_alias_move_deletes_the_new_version(workspace):
    from soil_trainer.errors import TrackingError
    from soil_trainer.registry import register

    before = {v.version for v in versions(workspace)}
    with pytest.raises(TrackingError, match="version deleted"):
        register(workspace.model_dir, workspace.metrics, MODEL_NAME, alias="latest", branch="main")  # reserved
    assert {v.version for v in versions(workspace)} == before


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_tracking_server_fails_after_bounded_retry_without_outputs(workspace, tmp_path, env, capsys):
    saved = dict(env)
    env.update({"MLFLOW_TRACKING_URI": _dead_url(), "SOILCI_TRACKING_RETRIES": "2", "SOILCI_TRACKING_BACKOFF_S": "0.1"})
    get_settings.cache_clear()
    try:
        model_dir = tmp_path / "models" / "model"
        args = ["train", "--params", str(workspace.params), "--data-dir", str(workspace.data), "--model-dir", str(model_dir)]
        assert main(args) == 3
        err = capsys.readouterr().err
        assert "unreachable" in err and "failed 2 times" in err
        assert not model_dir.parent.exists() or not any(model_dir.parent.iterdir())
        assert main(workspace.register_args("--branch", "main")) == 3
        assert "unreachable" in capsys.readouterr().err
    finally:
        env.clear()
        env.update(saved)
        get_settings.cache_clear()
