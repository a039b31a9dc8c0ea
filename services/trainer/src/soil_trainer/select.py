"""Choosing the pipeline: each family member scored by K-fold cross-validation on the training rows only.

Every member is scored on the same shuffled folds, so the comparison is paired, and PLS is scored
along its components path: one fit with the most components per fold gives the predictions of
every smaller model, because NIPALS extracts components one after another (Wold, Sjöström &
Eriksson 2001, *PLS-regression: a basic tool of chemometrics*, Chemometr. Intell. Lab. 58, 109-130).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, KFold

Splits = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MemberScore:
    """One family member's best hyperparameters and its K-fold CV RMSE there (target units)."""

    name: str
    best_params: dict[str, Any]
    cv_rmse: float  # mean over folds of each fold's RMSE
    cv_rmse_std: float  # their standard deviation across folds


def cv_splits(n_samples: int, folds: int, seed: int) -> Splits:
    """``(train, test)`` row indices of a shuffled K-fold split, fixed by ``seed``; the same for every member."""
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros((n_samples, 1))))


def pls_path_predictions(pls: PLSRegression, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Predictions of the 1..A-component submodels of a fitted A-component ``pls``: ``(n_test, A)``.

    ``y_hat_k = y_mean + y_std * ((x - x_mean) / x_std) @ R[:, :k] @ q[:k]`` with ``R = W (P'W)^-1``
    (``x_rotations_``); ``P'W`` is upper triangular for NIPALS, so the first k columns of ``R`` are the
    k-component model's own rotations.
    """
    x_mean, y_mean = x_train.mean(axis=0), float(y_train.mean())
    if pls.scale:
        x_std = x_train.std(axis=0, ddof=1)
        x_std[x_std == 0.0] = 1.0
        y_std = float(y_train.std(ddof=1)) or 1.0
    else:
        x_std, y_std = np.ones(x_train.shape[1]), 1.0
    scores = ((x_test - x_mean) / x_std) @ pls.x_rotations_
    return y_mean + y_std * np.cumsum(scores * pls.y_loadings_[0], axis=1)


def fold_rmse(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """RMSE of each column of ``predicted`` ``(n, m)`` against ``observed`` ``(n,)``: ``(m,)``."""
    return np.sqrt(np.mean((predicted - observed[:, None]) ** 2, axis=0))


def score_pls(name: str, features: np.ndarray, target: np.ndarray, splits: Splits, top: int,
              scale: bool) -> MemberScore:
    """The number of components 1..``top`` with the lowest mean fold RMSE (ties: the fewest)."""
    rmse = np.empty((len(splits), top))
    for i, (train, test) in enumerate(splits):
        pls = PLSRegression(n_components=top, scale=scale).fit(features[train], target[train])
        rmse[i] = fold_rmse(pls_path_predictions(pls, features[train], target[train], features[test]), target[test])
    mean = rmse.mean(axis=0)
    best = int(np.argmin(mean))
    return MemberScore(name, {"n_components": best + 1}, float(mean[best]), float(rmse[:, best].std()))


def score_grid(name: str, features: np.ndarray, target: np.ndarray, splits: Splits, regressor: BaseEstimator,
               grid: dict[str, list]) -> MemberScore:
    """Any other regressor: scikit-learn's grid search on the same folds."""
    search = GridSearchCV(regressor, grid or [{}], cv=splits, scoring="neg_root_mean_squared_error", refit=False)
    search.fit(features, target)
    i = search.best_index_
    return MemberScore(name, dict(search.best_params_), float(-search.cv_results_["mean_test_score"][i]),
                       float(search.cv_results_["std_test_score"][i]))


def choose(scores: list[MemberScore]) -> MemberScore:
    """The member with the lowest CV RMSE; a tie goes to the one declared first."""
    return min(scores, key=lambda s: s.cv_rmse)  # min keeps the first of equal keys
