"""A model trained and evaluated once per session against the real MLflow server, for the trainer's tests."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soil_trainer.cli import main
from soil_trainer.config import get_settings


@dataclass(frozen=True)
class Workspace:
    """A project folder with prepared data, a trained model and its benchmark metrics."""

    root: Path
    params: Path
    data: Path
    model_dir: Path
    metrics: Path
    predictions: Path
    plots: Path
    tracking_uri: str
    model_name: str = "soil-soc-trainer-tests"  # own name: other suites share the session's server
    n_missing: int = 3  # training rows whose target is blanked to exercise the drop-and-count rule

    @property
    def env(self) -> dict[str, str]:
        """What the CLI reads from the environment in these tests."""
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_EXPERIMENT_NAME": "trainer-tests",
                "SOILCI_GIT_REVISION": "0123abc"}

    def train_args(self, model_dir: Path | None = None, params: Path | None = None) -> list[str]:
        return ["train", "--params", str(params or self.params), "--data-dir", str(self.data),
                "--model-dir", str(model_dir or self.model_dir)]

    def evaluate_args(
        self, metrics: Path | None = None, predictions: Path | None = None, model_dir: Path | None = None
    ) -> list[str]:
        return [
            "evaluate", "--params", str(self.params), "--model-dir", str(model_dir or self.model_dir),
            "--benchmark", str(self.data / "benchmark.parquet"),
            "--metrics", str(metrics or self.metrics), "--predictions", str(predictions or self.predictions),
            "--plots-dir", str(self.plots),
        ]

    def register_args(self, *extra: str, model_dir: Path | None = None, metrics: Path | None = None) -> list[str]:
        return [
            "register", "--params", str(self.params), "--model-dir", str(model_dir or self.model_dir),
            "--metrics", str(metrics or self.metrics), "--name", self.model_name, *extra,
        ]

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def versions(self) -> list:
        return self.client().search_model_versions(f"name='{self.model_name}'")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, prepared_data, mlflow_server, repo_root) -> Workspace:
    """Train and evaluate once; training.parquet has ``n_missing`` rows without a target."""
    import mlflow

    root = tmp_path_factory.mktemp("trainer")
    data = root / "data"
    shutil.copytree(prepared_data, data)
    params = root / "params.yaml"
    shutil.copy(repo_root / "params.yaml", params)
    ws = Workspace(
        root=root, params=params, data=data, model_dir=root / "models" / "model",
        metrics=root / "metrics" / "metrics.json", predictions=root / "metrics" / "predictions.csv",
        plots=root / "reports", tracking_uri=mlflow_server,
    )
    training = pd.read_parquet(data / "training.parquet")
    training.loc[: ws.n_missing - 1, "SOC_target"] = np.nan
    training.to_parquet(data / "training.parquet", index=False)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in ws.env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        assert main(ws.train_args()) == 0
        assert main(ws.evaluate_args()) == 0
    get_settings.cache_clear()
    yield ws
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")  # undo the CLI's


@pytest.fixture
def workspace(trained: Workspace, monkeypatch) -> Workspace:
    """The session's trained workspace, with its environment set for this test only."""
    for key, value in trained.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield trained
    get_settings.cache_clear()
