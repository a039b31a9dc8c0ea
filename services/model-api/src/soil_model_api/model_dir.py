"""Read an MLflow sklearn model directory: MLmodel signature, skops estimator, soilci.json, domain.json.

The scikit-learn estimator is loaded by ``soil_contracts.model_file.load_estimator`` (skops with
soil-ci's type allowlist; a pickle model is refused, exit 5, and none of it runs), directly, with no
pyfunc and no pandas, so the serving path is ``estimator.predict(float64 array in band order)``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from soil_contracts.domain import ApplicabilityDomain, CalibrationSample
from soil_contracts.errors import ContractError, UntrustedModelError
from soil_contracts.model import METADATA_FILE, ModelMetadata
from soil_contracts.model_file import load_estimator
from soil_model_api.errors import ModelLoadError, UntrustedModel
from soil_model_api.served_model import LoadedModel, ModelInfo, RegistryLineage

MLMODEL = "MLmodel"
NUMERIC_TYPES = {"double", "float", "long", "integer"}

# The pipeline may have been fitted on a DataFrame; the service validates names and order itself
# and passes a bare array, so sklearn's per-call feature-name warning carries no information.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


def load_from_dir(path: Path, registry: RegistryLineage | None = None, source: str | None = None) -> LoadedModel:
    """Read an MLflow sklearn model directory (MLmodel, model.skops, optional soilci.json and domain.json).

    Raises:
        UntrustedModel: a pickle model, or types outside the allowlist (exit 5); nothing of it ran.
        ModelLoadError: anything else that makes it unservable (exit 2).
    """
    path = Path(path)
    mlmodel_path = path / MLMODEL
    if not mlmodel_path.is_file():
        raise ModelLoadError(f"{path}: not an MLflow model directory (no {MLMODEL} file)")
    try:
        mlmodel = yaml.safe_load(mlmodel_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{mlmodel_path}: cannot read ({exc})") from exc
    if not isinstance(mlmodel, dict):
        raise ModelLoadError(f"{mlmodel_path}: expected a mapping")

    bands = signature_bands(mlmodel, mlmodel_path)
    metadata = read_metadata(path)
    if metadata is not None and metadata.bands != bands:
        raise ModelLoadError(
            f"{path / METADATA_FILE}: 'bands' differ from the MLmodel signature's inputs "
            f"({len(metadata.bands)} vs {len(bands)} bands)"
        )
    estimator = read_estimator(path)
    info = ModelInfo.describe(metadata, registry, bands, source or str(path))
    domain = read_domain(path)
    if domain is not None and any(len(c.weights) != len(bands) for c in domain.artefacts):
        raise ModelLoadError(f"{path / ApplicabilityDomain.FILE}: artefact checks need one weight per input band "
                             f"({len(bands)})")
    return LoadedModel(estimator=estimator, info=info, example=input_example(path, mlmodel, bands),
                       domain=domain, calibration=read_calibration(path, bands))


def read_metadata(model_dir: Path) -> ModelMetadata | None:
    """The lineage file beside the model; absent means no lineage, malformed is a ModelLoadError."""
    path = Path(model_dir) / METADATA_FILE
    if not path.exists():
        return None
    try:
        return ModelMetadata.load(path)
    except ContractError as exc:  # names the file and the first bad field
        raise ModelLoadError(str(exc)) from exc


def read_domain(model_dir: Path) -> ApplicabilityDomain | None:
    """``domain.json`` beside the model; absent means served without judging, malformed is a ModelLoadError."""
    path = Path(model_dir) / ApplicabilityDomain.FILE
    if not path.exists():
        return None
    try:
        return ApplicabilityDomain.load(path)
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from exc


def read_calibration(model_dir: Path, bands: list[str]) -> np.ndarray | None:
    """``calibration_sample.json`` as (n, n_bands) float32; absent: no live drift check, malformed: ModelLoadError."""
    path = Path(model_dir) / CalibrationSample.FILE
    if not path.exists():
        return None
    try:
        sample = CalibrationSample.load(path)
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from exc
    if sample.bands != bands:
        raise ModelLoadError(f"{path}: bands differ from the MLmodel signature's inputs "
                             f"({len(sample.bands)} vs {len(bands)} bands)")
    return np.asarray(sample.rows, dtype=np.float32)


def signature_bands(mlmodel: dict[str, Any], where: Path) -> list[str]:
    """Band names in order from the signature's column inputs; each must be numeric."""
    raw = (mlmodel.get("signature") or {}).get("inputs")
    if not raw:
        raise ModelLoadError(f"{where}: the model has no input signature; save it with signature=infer_signature(X, y)")
    try:
        inputs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{where}: signature.inputs is not JSON ({exc})") from exc
    bands = []
    for i, col in enumerate(inputs):
        name, kind = col.get("name"), col.get("type")
        if not name:
            raise ModelLoadError(f"{where}: signature input {i} has no name; the service needs named band columns")
        if kind not in NUMERIC_TYPES:
            raise ModelLoadError(f"{where}: signature input {name!r} has type {kind!r}; bands must be numeric")
        bands.append(str(name))
    if len(set(bands)) != len(bands):
        raise ModelLoadError(f"{where}: signature has duplicate input names")
    return bands


def read_estimator(path: Path) -> Any:
    """The estimator, loaded safely (see the module docstring); our errors, as the service's."""
    try:
        return load_estimator(path)
    except UntrustedModelError as exc:
        raise UntrustedModel(str(exc)) from exc
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from exc


def input_example(path: Path, mlmodel: dict[str, Any], bands: list[str]) -> np.ndarray:
    """The saved input example's first row in band order, or a smooth synthetic spectrum."""
    info = mlmodel.get("saved_input_example_info") or {}
    example_file = path / info.get("artifact_path", "input_example.json")
    try:
        data = json.loads(example_file.read_text())
        columns, rows = data["columns"], data["data"]
        row = dict(zip(columns, rows[0], strict=True))
        values = np.array([[float(row[b]) for b in bands]], dtype=np.float64)
        if np.isfinite(values).all():
            return values
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    # A gently rising reflectance curve: finite, non-constant, plausible for any band set.
    return np.linspace(0.2, 0.5, len(bands), dtype=np.float64)[None, :]
