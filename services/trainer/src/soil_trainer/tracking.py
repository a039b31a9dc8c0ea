"""MLflow: where runs go, the lineage a run records, and a bounded wait for the server."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from soil_contracts._record import Record
from soil_contracts.redact import redact_url
from soil_trainer.config import get_settings
from soil_trainer.errors import TrackingError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Defaults for MLflow's own settings (an explicit environment value wins): a short per-request
# retry, so that our bounded retry decides how long we wait; no network use besides the server
# (no `pip install --dry-run` check); no project files (uv.lock) copied into the model.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
    "MLFLOW_LOG_UV_FILES": "false",
}
# Answers that retrying cannot change (the server is up and said no).
DEFINITE_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
}


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or a file store in ``./mlruns`` (needs no database driver)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()


def configure_mlflow() -> str:
    """Point MLflow at the tracking URI with the defaults above; return the URI."""
    import mlflow

    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # The local fallback is MLflow's file store, which MLflow 3 only opens on request.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI") or uri)
    return uri


def experiment_name(model_name: str) -> str:
    """``MLFLOW_EXPERIMENT_NAME`` if set, else the registered model's name (``register.model_name``)."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or model_name


def with_retry(action: Callable[[], T], what: str, uri: str) -> T:
    """Run ``action``; on failure retry a bounded number of times, then raise TrackingError."""
    settings = get_settings()
    attempts = max(1, settings.tracking_retries)
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # MlflowException, requests/urllib3 errors, OSError
            if getattr(exc, "error_code", None) in DEFINITE_ERRORS:
                raise TrackingError(f"MLflow at {redact_url(uri)} refused {what}: {_first_line(exc)}") from exc
            last = exc
            log.warning("%s: attempt %d/%d failed: %s", what, attempt, attempts, _first_line(exc))
            if attempt < attempts:
                time.sleep(settings.tracking_backoff_s * 2 ** (attempt - 1))
    raise TrackingError(
        f"MLflow tracking server {redact_url(uri)} unreachable: {what} failed {attempts} times "
        f"({_first_line(last)}); check MLFLOW_TRACKING_URI"
    ) from last


def ensure_reachable(uri: str) -> None:
    """Fail fast (bounded retry) when the tracking server does not answer a cheap request."""
    from mlflow import MlflowClient

    with_retry(lambda: MlflowClient(tracking_uri=uri).search_experiments(max_results=1), "connect", uri)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]


def file_md5(path: Path) -> str:
    """md5 of a file's bytes: the hash DVC records for it."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_version(files: dict[str, str]) -> str:
    """One id for a set of input files: md5 over their sorted ``name md5`` lines."""
    lines = "".join(f"{name} {md5}\n" for name, md5 in sorted(files.items()))
    return hashlib.md5(lines.encode()).hexdigest()


def log_model_records(model_id: str, *records: Record) -> None:
    """Upload each record's file (``soilci.json``, ``domain.json``) into the logged model's files, so every
    registry copy carries what the model predicts and its domain. ``None`` records are skipped."""
    import tempfile

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        for record in records:
            if record is not None:
                MlflowClient().log_model_artifact(model_id, str(record.save(Path(tmp) / record.FILE)))
