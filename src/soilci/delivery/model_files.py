"""The model publish-image bakes in: a trained model directory or a registry version, stamped with its version.

Nothing here loads the model; the checks of ``soil_contracts.model_file`` run before anything is
staged: a registry download must match its version's ``soilci.model_digest``, and either source must
be in the skops format, so no pickle ever reaches an image.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from soil_contracts.errors import ContractError, UntrustedModelError
from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import DIGEST_TAG, check_digest, model_file
from soilci.errors import ConfigError


def read_metadata(model_dir: Path) -> ModelMetadata:
    """The ``soilci.json`` of an MLflow model directory.

    Raises:
        ConfigError: not an MLflow model directory, or no soilci.json beside the model.
        ContractError: soilci.json is not model metadata (the field is named).
        UntrustedModelError: the model is not in the skops format (exit 5).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise ConfigError(f"{model_dir}: not an MLflow model directory (no MLmodel file)")
    model_file(model_dir)
    if not (model_dir / ModelMetadata.FILE).is_file():
        raise ConfigError(
            f"{model_dir}: no {ModelMetadata.FILE}; soil-trainer train writes it beside the model"
        )
    return ModelMetadata.load(model_dir / ModelMetadata.FILE)


def stamp(meta: ModelMetadata, *, model_name: str, model_version: str, where: Path | str) -> ModelMetadata:
    """``meta`` as the registered ``model_name`` version ``model_version``; refuses another model or version."""
    if meta.version not in (None, "") and str(meta.version) != str(model_version):
        raise ConfigError(f"{where}: records version {meta.version}, but --model-version is {model_version}")
    if meta.name != model_name:
        raise ConfigError(f"{where}: records model {meta.name!r}, not {model_name!r}")
    return meta.model_copy(update={"version": str(model_version)})


def stage_model(model_dir: Path, dest: Path, meta: ModelMetadata) -> None:
    """Copy the model directory to ``dest`` (the build context) with ``meta`` as its soilci.json."""
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise ConfigError(f"{model_dir}: not an MLflow model directory (no MLmodel file)")
    shutil.copytree(model_dir, dest)
    meta.save(dest / ModelMetadata.FILE)
    # Readable by the image's non-root user whatever the umask of the machine that trained it.
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def download_model(
    model_name: str, model_version: str, dest: Path, tracking_uri: str | None, *, git_revision: str
) -> tuple[Path, ModelMetadata]:
    """Fetch ``models:/<name>/<version>`` into ``dest``, check it, and return it with its metadata.

    The download must hash to the version's ``soilci.model_digest`` and be a skops model
    (``UntrustedModelError``, exit 5, before any of its files is read); the metadata comes from
    soilci.json or the registry.

    The registry's copy of a model has no soilci.json (MLflow logs only the model), so its metadata
    comes from the version's run as soil-trainer train logs it; ``git_revision`` stands in when the
    run has none.
    """
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    uri = f"models:/{model_name}/{model_version}"
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise ConfigError("no --model-dir and no MLFLOW_TRACKING_URI: cannot fetch the registered model")
    try:
        # Resolve the version's storage location with an explicit registry, then fetch through the server.
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        location = client.get_model_version_download_uri(model_name, model_version)
        recorded = (client.get_model_version(model_name, model_version).tags or {}).get(DIGEST_TAG)
        dest.mkdir(parents=True, exist_ok=True)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(dest), tracking_uri=tracking_uri
            )
        )
        check_digest(local, recorded, uri)
        model_file(local)
        if (local / ModelMetadata.FILE).is_file():
            return local, ModelMetadata.load(local / ModelMetadata.FILE)
        return local, registry_metadata(client, model_name, model_version, local, git_revision=git_revision)
    except (ConfigError, ContractError, UntrustedModelError):
        raise
    except Exception as exc:  # MlflowException, connection errors
        raise ConfigError(f"cannot download {uri} from {tracking_uri}: {exc}") from exc


def registry_metadata(
    client, model_name: str, model_version: str, model_dir: Path, *, git_revision: str
) -> ModelMetadata:
    """Model metadata from a registry version, its training run's tags, params and metrics, and its signature.

    Raises:
        ConfigError: the run does not record the target, data version or model family (a version logged
            outside soil-trainer train); pass ``--model-dir`` with the trained model directory then.
    """
    from mlflow.models import Model

    version = client.get_model_version(model_name, model_version)
    run = client.get_run(version.run_id) if version.run_id else None
    tags = {**(run.data.tags if run else {}), **(version.tags or {})}
    params = run.data.params if run else {}
    signature = Model.load(str(model_dir)).signature
    fields = {
        "name": model_name,
        "version": str(model_version),
        "git_revision": tags.get("git_revision") or git_revision,
        "data_version": tags.get("data_version"),
        "target": tags.get("target"),
        "target_unit": tags.get("target_unit"),
        "model": params.get("train.model"),
        "bands": signature.inputs.input_names() if signature else None,
    }
    missing = [key for key, value in fields.items() if not value]
    where = f"models:/{model_name}/{model_version}"
    if missing:
        raise ConfigError(
            f"{where} has no {ModelMetadata.FILE} and its run records no {', '.join(missing)}; "
            "pass --model-dir with the trained model directory"
        )
    data_files = {
        key.removeprefix("data.").removesuffix(".md5"): value
        for key, value in params.items()
        if key.startswith("data.") and key.endswith(".md5")
    }
    metrics = dict(run.data.metrics) if run else {}
    return ModelMetadata.parse(
        {
            **fields,
            "data_files": data_files,
            "metrics": metrics,
            "run_id": version.run_id,
            "model_id": getattr(version, "model_id", None),
        },
        where=where,
    )
