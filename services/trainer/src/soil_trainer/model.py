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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from soil_contracts.bands import band_positions
from soil_trainer.config import PreprocessingParams, TrainParams
from soil_trainer.errors import DataError, ParamsError
from soil_trainer.select import MemberScore, choose, cv_splits, score_grid, score_pls

RESAMPLE_MAX_FACTOR = 4  # a resampling grid may have at most this many times the spectra's bands


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


def build_preprocessing(bands: list[str], params: PreprocessingParams, where: str = "train.family"
                        ) -> list[tuple[str, Any]]:
    """Pipeline steps: absorbance, resampling, SNV, Savitzky-Golay, in that order (each optional).

    SNV: Barnes, Dhanoa & Lister (1989), Appl. Spectrosc. 43(5), 772-777; Savitzky & Golay (1964),
    Anal. Chem. 36(8), 1627-1639.
    """
    steps: list[tuple[str, Any]] = []
    n_points = len(bands)
    if params.absorbance:
        # log10(1/R) as two library calls, so the pickle references numpy only.
        steps.append(("log10", FunctionTransformer(np.log10)))
        steps.append(("absorbance", FunctionTransformer(np.negative)))
    if params.resample_step:
        positions = band_positions(bands)
        span = float(np.max(positions) - np.min(positions)) if len(positions) else 0.0
        # Checked before the grid is built: a tiny step (a typo like 1e-300) would allocate without end.
        if span / params.resample_step + 1 > RESAMPLE_MAX_FACTOR * len(bands):
            raise ParamsError(
                f"{where}.resample_step: {params.resample_step:g} makes more than {RESAMPLE_MAX_FACTOR} times "
                f"the {len(bands)} bands' points over their {span:g}-unit range; interpolating finer than the "
                "native spacing adds no information (use at least the band spacing)"
            )
        weights, grid = resampling_matrix(positions, params.resample_step)
        if len(grid) < 2:
            raise ParamsError(
                f"{where}.resample_step: {params.resample_step} leaves fewer than 2 grid points"
            )
        steps.append(("resample", FunctionTransformer(np.dot, kw_args={"b": weights})))
        n_points = len(grid)
    if params.snv:
        steps.append(("snv", FunctionTransformer(sklearn.preprocessing.scale, kw_args={"axis": 1})))
    if params.savgol_window:
        if params.savgol_window > n_points:
            raise ParamsError(
                f"{where}.savgol_window: {params.savgol_window} is longer than the "
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
    """The fitted pipeline of the chosen family member and what cross-validation said about every member."""

    pipeline: Pipeline
    bands: list[str]
    member: str  # the chosen member's name (``train.family``)
    best_params: dict[str, Any]
    cv_rmse: float
    cv_rmse_std: float
    cv_folds: int
    scores: list[MemberScore] = field(default_factory=list)  # every member, in declaration order
    extra: dict[str, Any] = field(default_factory=dict)


def member_features(spectra: pd.DataFrame, bands: list[str], name: str, params: PreprocessingParams
                    ) -> tuple[list[tuple[str, Any]], np.ndarray]:
    """One member's preprocessing steps and the ``(n, n_features)`` preprocessed spectra."""
    if params.absorbance:
        non_positive = int((spectra.to_numpy(dtype=float) <= 0).any(axis=1).sum())
        if non_positive:
            raise DataError(
                f"{non_positive} spectra have band values <= 0, but train.family.{name}.absorbance "
                "needs positive reflectance"
            )
    steps = build_preprocessing(bands, params, f"train.family.{name}")
    features = Pipeline(steps).fit_transform(spectra) if steps else spectra.to_numpy(dtype=float)
    if not np.all(np.isfinite(features)):
        raise DataError(f"preprocessing produced non-finite values; check train.family.{name}")
    return steps, np.asarray(features, dtype=float)


def fit_model(spectra: pd.DataFrame, target: np.ndarray, params: TrainParams) -> FittedModel:
    """Choose the family member and its hyperparameters by K-fold CV on these rows, then refit on all of them.

    ``spectra``: (n, n_bands) training spectra; ``target``: (n,). The folds are shuffled with
    ``train.seed`` and shared by every member. The preprocessing is per spectrum and stateless, so each
    member's is applied once before its CV: the same as running it inside every fold, only faster.

    Raises:
        DataError: too few rows for the folds, or spectra a member cannot preprocess.
        ParamsError: a member whose steps do not fit these bands.
    """
    bands = [str(c) for c in spectra.columns]
    target = np.asarray(target, dtype=float)
    cv_folds = params.cv_folds
    if len(target) < cv_folds:
        raise DataError(f"{len(target)} training samples are fewer than the {cv_folds} CV folds")
    splits = cv_splits(len(target), cv_folds, params.seed, params.cv_repeats)
    scores: list[MemberScore] = []
    built: dict[str, tuple[list[tuple[str, Any]], BaseEstimator]] = {}
    # One BLAS thread: the search is many small products, which threads slow down on a busy machine,
    # and the scores then do not depend on how many cores the machine has.
    with threadpool_limits(limits=1, user_api="blas"):
        family = dict(params.family)
        if len(target) < params.select_min_rows:  # too few rows for CV to tell the members apart
            family = dict([next(iter(family.items()))])
        for name, member in family.items():
            steps, features = member_features(spectra, bands, name, member)
            regressor, grid, _ = build_regressor(params, *features.shape)
            built[name] = steps, regressor
            if params.model == "pls":
                top = grid["n_components"][-1]
                scores.append(score_pls(name, features, target, splits, top, params.pls.scale))
            else:
                scores.append(score_grid(name, features, target, splits, regressor, grid))
    best = choose(scores, params.select_tolerance_se, cv_folds)
    steps, regressor = built[best.name]
    pipeline = Pipeline([*steps, ("model", clone(regressor).set_params(**best.best_params))]).fit(spectra, target)
    return FittedModel(
        pipeline=pipeline,
        bands=bands,
        member=best.name,
        best_params=dict(best.best_params),
        cv_rmse=best.cv_rmse,
        cv_rmse_std=best.cv_rmse_std,
        cv_folds=cv_folds,
        scores=scores,
    )


def predict(pipeline: Pipeline, spectra: pd.DataFrame) -> np.ndarray:
    """Predictions as a flat float array, whatever shape the regressor returns."""
    return np.asarray(pipeline.predict(spectra), dtype=float).reshape(-1)
