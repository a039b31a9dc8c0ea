"""The model the service holds: its estimator, what ``GET /v1/model`` reports about it, its self-check."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from soil_contracts.domain import ApplicabilityDomain
from soil_contracts.model import ModelMetadata
from soil_model_api.errors import ModelLoadError


def preprocessed(transforms: Sequence[Callable[[np.ndarray], np.ndarray]], spectra: np.ndarray,
                 width: int) -> np.ndarray:
    """(n, n_bands) spectra through the compiled preprocessing steps: (n, width) float64 features.

    Floating-point warnings (log10 of a non-positive value) are silenced: callers check finiteness.

    Raises:
        ValueError: the preprocessed spectra are not (n, width).
    """
    features = spectra
    if transforms:
        with np.errstate(all="ignore"):
            for transform in transforms:
                features = transform(features)
        features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != width:
        raise ValueError(f"the model expects {width} preprocessed features, got shape {features.shape}")
    return features


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


# A resampling matrix with at most this many non-zero weights per output point is applied as a
# gather (linear interpolation has two); a denser one stays a matrix product.
SPARSE_WEIGHTS = 4
# How far the numpy path may be from scikit-learn's on the verification spectra before it is dropped.
COMPILED_TOLERANCE = 1e-9


def _resample_gather(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """``x @ weights`` as a sum of a few gathered columns, or None when ``weights`` is not that sparse."""
    if weights.ndim != 2 or not np.isfinite(weights).all():
        return None
    nonzero = weights != 0
    per_column = int(nonzero.sum(0).max(initial=0))
    if per_column == 0 or per_column > SPARSE_WEIGHTS:
        return None
    rows = np.zeros((per_column, weights.shape[1]), dtype=np.intp)
    values = np.zeros((per_column, weights.shape[1]))
    for col in range(weights.shape[1]):
        (where,) = np.nonzero(nonzero[:, col])
        rows[: len(where), col] = where
        values[: len(where), col] = weights[where, col]
    terms = list(zip(rows, values, strict=True))

    def gather(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != weights.shape[0]:
            raise ValueError(f"resampling expects {weights.shape[0]} values per spectrum, got shape {x.shape}")
        if not np.isfinite(x).all():  # the dense product spreads a NaN from any band, even a 0-weighted one
            raise ValueError("Input X contains NaN or infinity before resampling")
        out = x[:, terms[0][0]] * terms[0][1]
        for index, weight in terms[1:]:
            out += x[:, index] * weight
        return out

    return gather


@dataclass(frozen=True)
class CompiledPipeline:
    """A fitted scikit-learn ``Pipeline`` of ``FunctionTransformer`` steps and a ``PLSRegression``, as plain numpy.

    scikit-learn's per-call checks (``validate_data``, feature-name and dataframe detection, the
    ``set_output`` wrappers) cost about four times the arithmetic for one spectrum. The same arithmetic
    runs here: each transformer's function with its keyword arguments (a sparse resampling matrix as a
    gather of its non-zero weights), then PLS's ``(X - x_mean) @ coef.T + intercept`` (scikit-learn's
    ``_PLS.predict``). What scikit-learn refuses is refused here too: a feature count other than the
    fitted one, and NaN or infinite preprocessed values (ValueError).
    """

    transforms: tuple[Callable[[np.ndarray], np.ndarray], ...]
    x_mean: np.ndarray  # (n_features,)
    coef: np.ndarray  # (n_targets, n_features)
    intercept: np.ndarray  # (n_targets,)
    one_target: bool  # fitted on a 1-D target: predictions are 1-D

    @classmethod
    def compile(cls, estimator: Any) -> CompiledPipeline | None:
        """The numpy form of ``estimator``, or None when a step is not one this class reproduces exactly."""
        from sklearn.cross_decomposition import PLSRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        if type(estimator) is not Pipeline or not estimator.steps:
            return None
        transforms: list[Callable[[np.ndarray], np.ndarray]] = []
        for _, step in estimator.steps[:-1]:
            if step is None or step == "passthrough":
                continue
            if (type(step) is not FunctionTransformer or step.validate or step.func is None
                    or step.feature_names_out is not None or getattr(step, "_sklearn_output_config", None)):
                return None
            kw = dict(step.kw_args or {})
            gather = _resample_gather(np.asarray(kw["b"])) if step.func is np.dot and set(kw) == {"b"} else None
            transforms.append(gather or partial(step.func, **kw))
        final = estimator.steps[-1][1]
        if type(final) is not PLSRegression or not hasattr(final, "coef_"):
            return None
        return cls(tuple(transforms), np.asarray(final._x_mean, dtype=np.float64),
                   np.asarray(final.coef_, dtype=np.float64), np.asarray(final.intercept_, dtype=np.float64),
                   bool(final._predict_1d))

    def predict_with_features(self, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and the preprocessed spectra of a (n, n_bands) float64 array.

        Raises:
            ValueError: the preprocessed spectra have the wrong width or a value that is not finite.
        """
        features = preprocessed(self.transforms, spectra, self.x_mean.shape[0])
        # A sum is finite only if every term is; only a sum that is not needs the element-wise check.
        if not math.isfinite(features.sum()) and not np.isfinite(features).all():
            raise ValueError("Input X contains NaN or infinity after preprocessing")
        out = (features - self.x_mean) @ self.coef.T + self.intercept
        return (out.ravel() if self.one_target else out), features


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator with the band order its signature demands."""

    estimator: Any
    info: ModelInfo
    example: np.ndarray  # one spectrum (1, n_bands), used for the self-check and the OpenAPI example
    domain: ApplicabilityDomain | None = None  # domain.json: calibration domain and conformal intervals
    calibration: np.ndarray | None = None  # calibration_sample.json: (n, n_bands) float32 raw spectra
    # The estimator as plain numpy (None: it is not a pipeline that CompiledPipeline reproduces, or
    # the two disagreed on the verification spectra); set at load, used for every prediction.
    compiled: CompiledPipeline | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", self._verified(CompiledPipeline.compile(self.estimator)))

    def _verified(self, compiled: CompiledPipeline | None) -> CompiledPipeline | None:
        """``compiled`` when it predicts the example (and it scaled by 0.9 and 1.1) as the estimator does."""
        if compiled is None:
            return None
        probe = np.vstack([self.example, 0.9 * self.example, 1.1 * self.example]).astype(np.float64)
        try:
            with np.errstate(all="ignore"):
                fast, fast_features = compiled.predict_with_features(probe)
                slow_features, slow = self._predict_sklearn(probe)
        except Exception:  # noqa: BLE001 - whatever fails here, the estimator itself serves
            return None
        slow = np.asarray(slow, dtype=np.float64).reshape(fast.shape)
        same = np.allclose(fast, slow, rtol=COMPILED_TOLERANCE, atol=COMPILED_TOLERANCE)
        if slow_features is not None:
            same = same and np.allclose(fast_features, slow_features, rtol=COMPILED_TOLERANCE,
                                        atol=COMPILED_TOLERANCE)
        return compiled if same else None

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
        if self.compiled is not None:
            out, features = self.compiled.predict_with_features(spectra)
            return features, out
        return self._predict_sklearn(spectra)

    def _predict_sklearn(self, spectra: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
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
