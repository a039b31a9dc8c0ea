"""Read an MLflow sklearn model directory: MLmodel signature, pickled estimator, soilci.json, domain.json.

The scikit-learn estimator is unpickled directly (no pyfunc, no pandas), so the serving path is
``estimator.predict(float64 array in band order)``.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from soil_contracts.domain import ApplicabilityDomain, CalibrationSample
from soil_contracts.errors import ContractError
from soil_contracts.model import METADATA_FILE, ModelMetadata
from soil_model_api.errors import ModelLoadError
from soil_model_api.served_model import LoadedModel, ModelInfo, RegistryLineage

MLMODEL = "MLmodel"
NUMERIC_TYPES = {"double", "float", "long", "integer"}
PICKLE_FORMATS = {"pickle", "cloudpickle"}

# The pipeline may have been fitted on a DataFrame; the service validates names and order itself
# and passes a bare array, so sklearn's per-call feature-name warning carries no information.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


def load_from_dir(path: Path, registry: RegistryLineage | None = None, source: str | None = None) -> LoadedModel:
    """Read an MLflow sklearn model directory (MLmodel, model.pkl, optional soilci.json)."""
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
    estimator = unpickle_estimator(path, mlmodel)
    info = ModelInfo.describe(metadata, registry, bands, source or str(path))
    return LoadedModel(estimator=estimator, info=info, example=input_example(path, mlmodel, bands),
                       domain=read_domain(path), calibration=read_calibration(path, bands))


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


def unpickle_estimator(path: Path, mlmodel: dict[str, Any]) -> Any:
    """Unpickle the sklearn flavor's model file (pickle or cloudpickle format)."""
    flavor = (mlmodel.get("flavors") or {}).get("sklearn")
    if not flavor:
        found = ", ".join(sorted((mlmodel.get("flavors") or {}).keys())) or "none"
        raise ModelLoadError(f"{path / MLMODEL}: no sklearn flavor (flavors: {found})")
    fmt = flavor.get("serialization_format", "pickle")
    if fmt not in PICKLE_FORMATS:
        raise ModelLoadError(
            f"{path / MLMODEL}: serialization_format {fmt!r} is not served; "
            "save with mlflow.sklearn.save_model(..., serialization_format='cloudpickle')"
        )
    model_file = path / flavor.get("pickled_model", "model.pkl")
    try:
        with open(model_file, "rb") as fh:
            if fmt == "cloudpickle":
                import cloudpickle

                estimator = cloudpickle.load(fh)
            else:
                estimator = pickle.load(fh)
    except Exception as exc:  # unpickling raises anything the pickled classes raise
        raise ModelLoadError(f"{model_file}: cannot unpickle ({type(exc).__name__}: {exc})") from exc
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{model_file}: {type(estimator).__name__} has no predict method")
    return estimator


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
