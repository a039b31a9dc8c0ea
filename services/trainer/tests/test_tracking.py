"""MLflow tracking: an unreachable server fails train and register after a bounded retry, writing nothing."""

from __future__ import annotations

from soil_trainer.cli import main
from soil_trainer.config import get_settings
from tests.support import free_port


def test_unreachable_tracking_server_fails_after_bounded_retry_without_outputs(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SOILCI_TRACKING_RETRIES", "2")
    monkeypatch.setenv("SOILCI_TRACKING_BACKOFF_S", "0.1")
    get_settings.cache_clear()
    model_dir = tmp_path / "models" / "model"
    assert main(workspace.train_args(model_dir)) == 3
    err = capsys.readouterr().err
    assert "unreachable" in err and "failed 2 times" in err
    assert not model_dir.parent.exists() or not any(model_dir.parent.iterdir())
    assert main(workspace.register_args("--branch", "main")) == 3
    assert "unreachable" in capsys.readouterr().err
