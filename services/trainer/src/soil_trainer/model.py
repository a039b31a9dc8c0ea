"""The model: chemometric preprocessing and a regressor, as a plain scikit-learn pipeline.

Every step is a ``FunctionTransformer`` over a numpy, scipy or scikit-learn function, so the
pickled pipeline loads where only those libraries are installed (the model-api image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.signal
import sklearn.preprocessing
from sklearn.base import BaseEstimator, clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from soil_contracts.bands import band_positions
from soil_trainer.config import PreprocessingParams, TrainParams
from soil_trainer.errors import DataError, ParamsError


def resampling_matrix(positions: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation onto an ascending grid with ``step`` spacing: ``spectra @ W``.

    Returns ``(W, grid)``; ``W`` has one row per band (in the bands' own order, ascending or
    descending) and one column per grid point, and each column's weights sum to 1.
    """
    positions = np.asarray(positions, dtype=float)
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    if len(ordered) < 2 or np.any(np.diff(ordered) <= 0):
        raise DataError("band positions must be distinct to resample the spectra")
    grid = np.arange(ordered[0], ordered[-1] + step * 1e-9, step)
    left = np.clip(np.searchsorted(ordered, grid, side="right") - 1, 0, len(ordered) - 2)
    frac = (grid - ordered[left]) / (ordered[left + 1] - ordered[left])
    weights = np.zeros((len(positions), len(grid)))
    cols = np.arange(len(grid))
    np.add.at(weights, (order[left], cols), 1.0 - frac)
    np.add.at(weights, (order[left + 1], cols), frac)
    return weights, grid


def build_preprocessing(bands: list[str], params: PreprocessingParams) -> list[tuple[str, Any]]:
    """Pipeline steps: absorbance, resampling, SNV, Savitzky-Golay, in that order (each optional)."""
    steps: list[tuple[str, Any]] = []
    n_points = len(bands)
    if params.absorbance:
        # log10(1/R) as two library calls, so the pickle references numpy only.
        steps.append(("log10", FunctionTransformer(np.log10)))
        steps.append(("absorbance", FunctionTransformer(np.negative)))
    if params.resample_step:
        weights, grid = resampling_matrix(band_positions(bands), params.resample_step)
        if len(grid) < 2:
            raise ParamsError(
                f"train.preprocessing.resample_step: {params.resample_step} leaves fewer than 2 grid points"
            )
        steps.append(("resample", FunctionTransformer(np.dot, kw_args={"b": weights})))
        n_points = len(grid)
    if params.snv:
        steps.append(("snv", FunctionTransformer(sklearn.preprocessing.scale, kw_args={"axis": 1})))
    if params.savgol_window:
        if params.savgol_window > n_points:
            raise ParamsError(
                f"train.preprocessing.savgol_window: {params.savgol_window} is longer than the "
                f"{n_points} spectral points"
            )
        kw = {
            "window_length": params.savgol_window,
            "polyorder": params.savgol_polyorder,
            "deriv": params.savgol_deriv,
            "axis": 1,
        }
        steps.append(("savgol", FunctionTransformer(scipy.signal.savgol_filter, kw_args=kw)))
    return steps


def build_regressor(params: TrainParams, n_samples: int, n_features: int) -> tuple[BaseEstimator, dict, int]:
    """The regressor, its CV grid and the number of CV folds for ``train.model``."""
    if params.model == "pls":
        cfg = params.pls
        inner = n_samples - int(np.ceil(n_samples / cfg.cv_folds))  # smallest CV training fold
        top = min(cfg.max_components, inner - 1, n_features)
        if top < 1:
            raise DataError(f"{n_samples} training samples are too few for {cfg.cv_folds}-fold PLS")
        return PLSRegression(scale=cfg.scale), {"n_components": list(range(1, top + 1))}, cfg.cv_folds
    if params.model == "ridge":
        return Ridge(), {"alpha": list(params.ridge.alphas)}, params.ridge.cv_folds
    if params.model == "random_forest":
        cfg = params.random_forest
        forest = RandomForestRegressor(
            n_estimators=cfg.n_estimators,
            min_samples_leaf=cfg.min_samples_leaf,
            max_features=cfg.max_features,
            random_state=params.seed,
            n_jobs=1,
        )
        return forest, {}, cfg.cv_folds
    raise ParamsError(f"train.model: unknown model {params.model!r}")  # unreachable: TrainParams checks


@dataclass(frozen=True)
class FittedModel:
    """The fitted pipeline and what cross-validation said about it."""

    pipeline: Pipeline
    bands: list[str]
    best_params: dict[str, Any]
    cv_rmse: float
    cv_rmse_std: float
    cv_folds: int
    extra: dict[str, Any] = field(default_factory=dict)


def fit_model(spectra: pd.DataFrame, target: np.ndarray, params: TrainParams) -> FittedModel:
    """Choose hyperparameters by K-fold CV (shuffled with ``train.seed``), then refit on all rows.

    The preprocessing is per spectrum and stateless, so it is applied once before the search:
    the same as running it inside every fold, only faster.
    """
    bands = [str(c) for c in spectra.columns]
    target = np.asarray(target, dtype=float)
    if params.preprocessing.absorbance:
        non_positive = int((spectra.to_numpy(dtype=float) <= 0).any(axis=1).sum())
        if non_positive:
            raise DataError(
                f"{non_positive} spectra have band values <= 0, but train.preprocessing.absorbance "
                "needs positive reflectance"
            )
    steps = build_preprocessing(bands, params.preprocessing)
    features = Pipeline(steps).fit_transform(spectra) if steps else spectra.to_numpy(dtype=float)
    if not np.all(np.isfinite(features)):
        raise DataError("preprocessing produced non-finite values; check train.preprocessing")
    regressor, grid, cv_folds = build_regressor(params, *features.shape)
    if len(target) < cv_folds:
        raise DataError(f"{len(target)} training samples are fewer than the {cv_folds} CV folds")
    search = GridSearchCV(
        regressor,
        grid,
        cv=KFold(cv_folds, shuffle=True, random_state=params.seed),
        scoring="neg_root_mean_squared_error",
        refit=False,
    )
    search.fit(features, target)
    best = dict(search.best_params_)
    final = clone(regressor).set_params(**best)
    pipeline = Pipeline([*steps, ("model", final)]).fit(spectra, target)
    i = search.best_index_
    return FittedModel(
        pipeline=pipeline,
        bands=bands,
        best_params=best,
        cv_rmse=float(-search.cv_results_["mean_test_score"][i]),
        cv_rmse_std=float(search.cv_results_["std_test_score"][i]),
        cv_folds=cv_folds,
        extra={"n_features": int(features.shape[1])},
    )


def predict(pipeline: Pipeline, spectra: pd.DataFrame) -> np.ndarray:
    """Predictions as a flat float array, whatever shape the regressor returns."""
    return np.asarray(pipeline.predict(spectra), dtype=float).reshape(-1)
