"""The model the service holds: its estimator, what ``GET /v1/model`` reports about it, its self-check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from soil_contracts.domain import ApplicabilityDomain
from soil_contracts.model import ModelMetadata
from soil_model_api.errors import ModelLoadError


@dataclass(frozen=True)
class RegistryLineage:
    """What the registry says about the served version; where it speaks, it overrides ``soilci.json``."""

    name: str
    version: str
    alias: str | None  # the alias MODEL_URI resolved; None when the version was named directly
    aliases: list[str]
    git_revision: str | None = None  # from the version's tags
    data_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # from its metric.<name> tags


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
    unit: str | None  # the target's unit, e.g. "%" or "pH"
    metrics: dict[str, float]
    bands: list[str]
    source: str
    slot: str | None = None
    image_tag: str | None = None
    scale: str | None = None  # the input spectra's scale (soilci.json), e.g. reflectance_percent

    @classmethod
    def describe(
        cls, metadata: ModelMetadata | None, registry: RegistryLineage | None, bands: list[str], source: str
    ) -> ModelInfo:
        """Lineage from ``soilci.json`` (None: served without lineage), overridden by the registry's."""
        info = cls(name=None, version=None, alias=None, aliases=[], git_revision=None, data_version=None,
                   target=None, unit=None, metrics={}, bands=bands, source=source)
        if metadata is not None:
            info = replace(info, name=metadata.name, version=metadata.version, git_revision=metadata.git_revision,
                           data_version=metadata.data_version, target=metadata.target,
                           unit=metadata.target_unit, scale=metadata.scale.value,
                           metrics=dict(metadata.metrics))
        if registry is not None:
            info = replace(info, name=registry.name, version=registry.version, alias=registry.alias,
                           aliases=list(registry.aliases),
                           git_revision=registry.git_revision or info.git_revision,
                           data_version=registry.data_version or info.data_version,
                           metrics=dict(registry.metrics) or info.metrics)
        return info


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator with the band order its signature demands."""

    estimator: Any
    info: ModelInfo
    example: np.ndarray  # one spectrum (1, n_bands), used for the self-check and the OpenAPI example
    domain: ApplicabilityDomain | None = None  # domain.json: calibration domain and conformal intervals
    calibration: np.ndarray | None = None  # calibration_sample.json: (n, n_bands) float32 raw spectra

    @property
    def bands(self) -> list[str]:
        return self.info.bands

    def predict(self, spectra: np.ndarray) -> np.ndarray:
        """One float per row of a (n, n_bands) float64 array."""
        return self.predict_with_features(spectra)[0]

    def predict_with_features(self, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and the preprocessed spectra they came from (None when not a plain Pipeline)."""
        with np.errstate(all="ignore"):
            features, out = self._predict(spectra)
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (spectra.shape[0],):
            raise ValueError(f"model returned shape {out.shape} for {spectra.shape[0]} spectra; expected one value each")
        return out, features

    def _predict(self, spectra: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        # A plain Pipeline is run step by step, as Pipeline.predict does without metadata routing,
        # minus its per-call routing bookkeeping (a third of the model time for one spectrum).
        steps = getattr(self.estimator, "steps", None)
        if type(self.estimator).__name__ != "Pipeline" or not steps:
            return None, self.estimator.predict(spectra)
        for _, step in steps[:-1]:
            if step is not None and step != "passthrough":
                spectra = step.transform(spectra)
        return spectra, steps[-1][1].predict(spectra)


@dataclass
class ModelState:
    """The service's one model slot: loading until a model passes its self-check, then ready."""

    status: str = "loading"  # loading | ready | failed
    model: LoadedModel | None = None
    error: str | None = None
    attempts: int = 0
    self_check: dict[str, Any] = field(default_factory=dict)


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
    if model.domain is not None:
        _, features = model.predict_with_features(model.example)
        if features is None or features.shape[1] != model.domain.n_features:
            found = "no preprocessed spectra" if features is None else f"{features.shape[1]} features"
            raise ModelLoadError(f"domain.json describes {model.domain.n_features} preprocessed features, "
                                 f"but the model gives {found}")
    return {"ok": True, "prediction": float(single[0]), "seconds": round(time.perf_counter() - start, 6)}
