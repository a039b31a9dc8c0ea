"""Serve a version from the MLflow registry: resolve it once, download it pinned by version, load it.

What answers is the registry at ``MLFLOW_TRACKING_URI``; messages carry no credentials of that URI.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from soil_contracts.errors import UntrustedModelError
from soil_contracts.model_file import DIGEST_TAG, check_digest
from soil_contracts.redact import redact
from soil_model_api.config import RegistrySource, Settings
from soil_model_api.errors import ModelLoadError, RegistryUnavailable, UntrustedModel
from soil_model_api.model_dir import MLMODEL, load_from_dir
from soil_model_api.served_model import LoadedModel, RegistryLineage

# Defaults for MLflow's own HTTP settings (an explicit environment value wins). MLflow's are 7
# retries with backoff factor 2 and a 120 s timeout: about 250 s before `check` or a start-up
# attempt learns the registry is down. Here: 3 attempts (1 s and 2 s apart), 10 s per request; the
# service itself keeps retrying with its own backoff (MODEL_API_LOAD_RETRY_MAX_SECONDS).
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def bound_mlflow_requests() -> None:
    """Apply ``MLFLOW_HTTP_DEFAULTS`` where the environment does not set them (before MLflow's first request)."""
    for key, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def load_from_registry(source: RegistrySource, settings: Settings) -> LoadedModel:
    """Resolve ``source`` to one version, download ``models:/<name>/<version>``, load it.

    Raises:
        RegistryUnavailable: the registry did not answer.
        UntrustedModel: the download does not match the version's ``soilci.model_digest`` (or it has
            none), or it is a pickle model (exit 5); checked before any file of it is read.
        ModelLoadError: the version does not exist, is not the one a register record names, or is not servable.
    """
    bound_mlflow_requests()
    import mlflow.artifacts
    from mlflow import MlflowClient

    tracking_uri = settings.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if source.alias:
            mv = client.get_model_version_by_alias(source.name, source.alias)
        else:
            mv = client.get_model_version(source.name, source.version)
    except Exception as exc:  # MlflowException or a transport error: both are named
        raise registry_error(exc, f"{source.origin} {source.uri}") from exc
    if source.run_id and mv.run_id != source.run_id:
        raise ModelLoadError(
            f"{source.origin}: version {mv.version} of {source.name} was created by run {mv.run_id}, "
            f"not by run {source.run_id} as the record says; is MLFLOW_TRACKING_URI the registry it was made in?"
        )
    # Download by version, not alias, so an alias moved meanwhile cannot mix two versions.
    cache = Path(settings.cache_dir or tempfile.gettempdir()) / "soil-model-api"
    cache.mkdir(parents=True, exist_ok=True)
    dst = Path(tempfile.mkdtemp(prefix=f"{source.name}-{mv.version}-", dir=cache))
    try:
        try:
            # The version's own files (not models:/, to which MLflow adds a file of its own): what the digest covers.
            location = client.get_model_version_download_uri(source.name, mv.version)
            local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(dst),
                                                        tracking_uri=tracking_uri)
        except Exception as exc:  # as above
            raise registry_error(exc, f"{source.origin} {source.uri}: cannot download version {mv.version}") from exc
        label = f"{source.uri} (version {mv.version})" if source.alias else f"{source.uri} ({source.origin})"
        root = find_model_root(Path(local))
        try:
            check_digest(root, (mv.tags or {}).get(DIGEST_TAG), f"models:/{source.name}/{mv.version}")
        except UntrustedModelError as exc:
            raise UntrustedModel(str(exc)) from exc
        return load_from_dir(root, registry=registry_lineage(source, mv), source=label)
    finally:
        # Everything needed is in memory now; the download would only fill /tmp (a tmpfs in the pod).
        shutil.rmtree(dst, ignore_errors=True)


def registry_error(exc: BaseException, where: str) -> ModelLoadError:
    """``exc`` as ours: RegistryUnavailable when the registry did not answer, else ModelLoadError; redacted."""
    import requests

    message = redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, requests.RequestException) and not isinstance(chain, requests.exceptions.InvalidURL):
            return RegistryUnavailable(f"{where}: the MLflow registry did not answer: {message}")
        chain = chain.__cause__ or chain.__context__
    return ModelLoadError(f"{where}: {message}")


def translate(exc: BaseException) -> ModelLoadError | None:
    """For the CLI boundary: an MLflow or transport error that escaped the loader, as ours."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, (MlflowException, requests.RequestException)):
        return registry_error(exc, "MLflow registry")
    return None


def registry_lineage(source: RegistrySource, mv: Any) -> RegistryLineage:
    """Lineage from the registered version: its aliases and tags (git_revision, data_version, metric.*)."""
    tags = dict(mv.tags or {})
    metrics = {k.removeprefix("metric."): _as_float(v) for k, v in tags.items() if k.startswith("metric.")}
    return RegistryLineage(
        name=source.name,
        version=str(mv.version),
        alias=source.alias,
        aliases=sorted(getattr(mv, "aliases", None) or []),
        git_revision=tags.get("git_revision") or None,
        data_version=tags.get("data_version") or None,
        metrics={k: v for k, v in metrics.items() if v is not None},
    )


def find_model_root(path: Path) -> Path:
    """The directory holding MLmodel: the download itself or its only subdirectory that has one."""
    if (path / MLMODEL).is_file():
        return path
    found = [p.parent for p in path.rglob(MLMODEL)]
    if len(found) != 1:
        raise ModelLoadError(f"{path}: expected one MLmodel in the downloaded version, found {len(found)}")
    return found[0]


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
