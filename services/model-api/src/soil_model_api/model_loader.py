"""Load the one model the service serves: an MLflow sklearn model directory, local or from the registry.

The scikit-learn estimator is unpickled directly (no pyfunc, no pandas), so the serving path is
``estimator.predict(float64 array in band order)``. Model sources come only from the environment
(``MODEL_URI`` / ``MODEL_DIR``), never from a request.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from soil_model_api.config import REGISTRY_URI, Settings
from soil_model_api.errors import ModelLoadError

log = logging.getLogger(__name__)

MLMODEL = "MLmodel"
SOILCI_JSON = "soilci.json"
NUMERIC_TYPES = {"double", "float", "long", "integer"}
PICKLE_FORMATS = {"pickle", "cloudpickle"}

# The pipeline may have been fitted on a DataFrame; the service validates names and order itself
# and passes a bare array, so sklearn's per-call feature-name warning carries no information.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /v1/model`` reports about the loaded model and where it runs."""

    name: str | None
    version: str | None
    alias: str | None
    aliases: list[str]
    git_revision: str | None
    data_version: str | None
    target: str | None
    metrics: dict[str, float]
    bands: list[str]
    source: str
    slot: str | None = None
    image_tag: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator with the band order its signature demands."""

    estimator: Any
    info: ModelInfo
    example: np.ndarray  # one spectrum (1, n_bands), used for the self-check and the OpenAPI example

    @property
    def bands(self) -> list[str]:
        return self.info.bands

    def predict(self, spectra: np.ndarray) -> np.ndarray:
        """One float per row of a (n, n_bands) float64 array."""
        with np.errstate(all="ignore"):
            out = self._predict(spectra)
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (spectra.shape[0],):
            raise ValueError(f"model returned shape {out.shape} for {spectra.shape[0]} spectra; expected one value each")
        return out

    def _predict(self, spectra: np.ndarray) -> np.ndarray:
        # A plain Pipeline is run step by step, as Pipeline.predict does without metadata routing,
        # minus its per-call routing bookkeeping (a third of the model time for one spectrum).
        steps = getattr(self.estimator, "steps", None)
        if type(self.estimator).__name__ != "Pipeline" or not steps:
            return self.estimator.predict(spectra)
        for _, step in steps[:-1]:
            if step is not None and step != "passthrough":
                spectra = step.transform(spectra)
        return steps[-1][1].predict(spectra)


@dataclass
class ModelState:
    """The service's one model slot: loading until a model passes its self-check, then ready."""

    status: str = "loading"  # loading | ready | failed
    model: LoadedModel | None = None
    error: str | None = None
    attempts: int = 0
    self_check: dict[str, Any] = field(default_factory=dict)


def load_model(settings: Settings) -> LoadedModel:
    """Load from ``MODEL_URI`` (registry) or ``MODEL_DIR``, whichever the settings name."""
    source = settings.model_source()
    if settings.model_uri:
        model = load_from_registry(settings.model_uri, settings)
    else:
        model = load_from_dir(Path(source))
    return replace(model, info=replace(model.info, slot=settings.slot, image_tag=settings.image_tag))


def load_from_dir(path: Path, registry_meta: dict[str, Any] | None = None, source: str | None = None) -> LoadedModel:
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
    meta = read_soilci_json(path / SOILCI_JSON)
    if meta.get("bands") is not None and list(meta["bands"]) != bands:
        raise ModelLoadError(
            f"{path / SOILCI_JSON}: 'bands' differ from the MLmodel signature's inputs "
            f"({len(meta['bands'])} vs {len(bands)} bands)"
        )
    estimator = unpickle_estimator(path, mlmodel)
    meta.update(registry_meta or {})
    metrics = {str(k): float(v) for k, v in (meta.get("metrics") or {}).items() if _is_number(v)}
    info = ModelInfo(
        name=meta.get("name"),
        version=None if meta.get("version") is None else str(meta["version"]),
        alias=meta.get("alias"),
        aliases=list(meta.get("aliases") or []),
        git_revision=meta.get("git_revision"),
        data_version=meta.get("data_version"),
        target=meta.get("target"),
        metrics=metrics,
        bands=bands,
        source=source or str(path),
    )
    return LoadedModel(estimator=estimator, info=info, example=input_example(path, mlmodel, bands))


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


def read_soilci_json(path: Path) -> dict[str, Any]:
    """The lineage file beside the model; absent means no lineage, malformed is an error."""
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return meta


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


def load_from_registry(uri: str, settings: Settings) -> LoadedModel:
    """Resolve ``models:/name@alias`` or ``models:/name/N`` to one version, download it, load it."""
    match = REGISTRY_URI.match(uri)
    if match is None:
        raise ModelLoadError(f"MODEL_URI: {uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, version = match["name"], match["alias"], match["version"]
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    tracking_uri = settings.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise ModelLoadError(f"MODEL_URI {uri}: {exc.message}") from exc
    # Download by version, not alias, so an alias moved meanwhile cannot mix two versions.
    cache = Path(settings.cache_dir or tempfile.gettempdir()) / "soil-model-api"
    cache.mkdir(parents=True, exist_ok=True)
    dst = Path(tempfile.mkdtemp(prefix=f"{name}-{mv.version}-", dir=cache))
    try:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst), tracking_uri=tracking_uri
            )
        except MlflowException as exc:
            raise ModelLoadError(f"MODEL_URI {uri}: cannot download version {mv.version}: {exc.message}") from exc
        return load_from_dir(find_model_root(Path(local)), registry_meta=registry_meta(name, alias, mv),
                             source=f"{uri} (version {mv.version})")
    finally:
        # Everything needed is in memory now; the download would only fill /tmp (a tmpfs in the pod).
        shutil.rmtree(dst, ignore_errors=True)


def registry_meta(name: str, alias: str | None, mv: Any) -> dict[str, Any]:
    """Lineage from the registered version: its aliases and tags (git_revision, data_version, metric.*)."""
    tags = dict(mv.tags or {})
    meta: dict[str, Any] = {
        "name": name,
        "version": str(mv.version),
        "alias": alias,
        "aliases": sorted(getattr(mv, "aliases", None) or []),
    }
    for key in ("git_revision", "data_version"):
        if tags.get(key):
            meta[key] = tags[key]
    metrics = {k.removeprefix("metric."): _as_float(v) for k, v in tags.items() if k.startswith("metric.")}
    metrics = {k: v for k, v in metrics.items() if v is not None}
    if metrics:
        meta["metrics"] = metrics
    return meta


def find_model_root(path: Path) -> Path:
    """The directory holding MLmodel: the download itself or its only subdirectory that has one."""
    if (path / MLMODEL).is_file():
        return path
    found = [p.parent for p in path.rglob(MLMODEL)]
    if len(found) != 1:
        raise ModelLoadError(f"{path}: expected one MLmodel in the downloaded version, found {len(found)}")
    return found[0]


def run_self_check(model: LoadedModel) -> dict[str, Any]:
    """Predict the example alone and twice in a batch; all finite and equal, or ModelLoadError."""
    start = time.perf_counter()
    try:
        single = model.predict(model.example)
        pair = model.predict(np.vstack([model.example, model.example]))
    except Exception as exc:  # any failure of the model itself makes the slot unready
        raise ModelLoadError(f"self-check prediction failed ({type(exc).__name__}: {exc})") from exc
    if not (np.isfinite(single).all() and np.isfinite(pair).all()):
        raise ModelLoadError("self-check prediction is not finite")
    if not np.allclose(pair, single[0], rtol=1e-9, atol=1e-12):
        raise ModelLoadError("self-check: the same spectrum predicts differently within a batch")
    return {"ok": True, "prediction": float(single[0]), "seconds": round(time.perf_counter() - start, 6)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
