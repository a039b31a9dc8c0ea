"""Prediction intervals: cross-conformal residual quantiles of the chosen regressor (MAPIE).

MAPIE's ``CrossConformalRegressor`` with ``method="base"`` and the absolute conformity score gives
``prediction +- q`` where ``q`` is the finite-sample-corrected quantile of the out-of-fold absolute
residuals. Serving stores only ``q`` per coverage, so an interval costs one addition.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold

from soil_contracts.domain import IntervalWidth

COVERAGES = (0.9, 0.95)  # the first is the one served by default


def interval_method(folds: int) -> str:
    return f"mapie.CrossConformalRegressor(method=base, conformity_score=absolute, cv=KFold({folds}, shuffle))"


def conformal_half_widths(
    regressor: BaseEstimator, features: np.ndarray, target: np.ndarray, folds: int, seed: int,
    coverages: tuple[float, ...] = COVERAGES,
) -> list[IntervalWidth]:
    """Half-widths of the cross-conformal intervals of ``regressor`` (unfitted, final hyperparameters).

    ``features``: (n, n_features) preprocessed spectra; ``target``: (n,). The folds are shuffled
    with ``seed``, as in the hyperparameter search.
    """
    from mapie.regression import CrossConformalRegressor

    mapie = CrossConformalRegressor(
        estimator=clone(regressor), confidence_level=list(coverages), conformity_score="absolute",
        method="base", cv=KFold(folds, shuffle=True, random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAPIE's notes on ensembles and infinite bounds
        mapie.fit_conformalize(features, np.asarray(target, dtype=float))
        _, bounds = mapie.predict_interval(features[:1], aggregate_point_predictions=None)
    # bounds: (1, 2, n_coverages); "base" intervals are symmetric around the full-data prediction.
    widths = (bounds[0, 1, :] - bounds[0, 0, :]) / 2.0
    return [IntervalWidth(coverage=c, half_width=float(w)) for c, w in zip(coverages, widths, strict=True)]
