"""Choosing the pipeline: each family member scored by K-fold cross-validation on the training rows only.

Every member is scored on the same shuffled folds, so the comparison is paired, and PLS is scored
along its components path: one fit with the most components per fold gives the predictions of
every smaller model, because NIPALS extracts components one after another (Wold, Sjöström &
Eriksson 2001, *PLS-regression: a basic tool of chemometrics*, Chemometr. Intell. Lab. 58, 109-130).
The chosen member is then refitted with scikit-learn's ``PLSRegression``, the model that is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, KFold

Splits = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MemberScore:
    """One family member's best hyperparameters and its K-fold CV RMSE there (target units)."""

    name: str
    best_params: dict[str, Any]
    cv_rmse: float  # mean over folds of each fold's RMSE
    cv_rmse_std: float  # their standard deviation across folds
    fold_rmse: tuple[float, ...] = ()  # each fold's RMSE, in fold order (the same folds for every member)


def cv_splits(n_samples: int, folds: int, seed: int, repeats: int = 1) -> Splits:
    """``(train, test)`` row indices of ``repeats`` shuffled K-fold splits (seeds ``seed``, ``seed + 1`` ...);
    the same for every member."""
    rows = np.zeros((n_samples, 1))
    return [split for r in range(repeats) for split in KFold(folds, shuffle=True, random_state=seed + r).split(rows)]


def pls_path_predictions(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_components: int,
                         scale: bool = False) -> np.ndarray:
    """Predictions of the 1..A-component PLS1 models fitted on the training rows: ``(n_test, A)``.

    NIPALS for one response (Wold, Sjöström & Eriksson 2001), the algorithm of scikit-learn's
    ``PLSRegression``, which the final model is. ``X`` is never deflated: with ``y`` deflated, the
    weight of component j is ``X_j'y_j = X'y_j - P T'y_j`` and its loading ``X_j't_j / t_j't_j`` likewise,
    with ``X`` the centred training rows and ``T``, ``P`` the earlier scores and loadings; so a component
    costs three matrix-vector products with ``X`` (the ``T'`` terms vanish in exact arithmetic and keep
    rounding from accumulating). The
    k-component model predicts ``y_mean + y_std * x R[:, :k] q[:k]`` with ``R = W (P'W)^-1``: ``P'W``
    is upper triangular, so the first k columns of ``R`` are the k-component model's own. Components
    after ``y`` is fully explained repeat the last prediction.

    ``scale``: divide bands and ``y`` by their standard deviation (ddof 1), as ``PLSRegression(scale=True)``.
    """
    x_mean, y_mean = x_train.mean(axis=0), float(y_train.mean())
    x_std, y_std = np.ones(x_train.shape[1]), 1.0
    if scale:
        x_std = x_train.std(axis=0, ddof=1)
        x_std[x_std == 0.0] = 1.0
        y_std = float(y_train.std(ddof=1)) or 1.0
    x = (x_train - x_mean) / x_std
    y = (y_train - y_mean) / y_std
    n, p = x.shape
    weights, loadings = np.zeros((p, n_components)), np.zeros((p, n_components))
    scores, q = np.zeros((n, n_components)), np.zeros(n_components)
    done = 0
    for j in range(n_components):
        t_prev, p_prev = scores[:, :j], loadings[:, :j]
        w = x.T @ y - p_prev @ (t_prev.T @ y)  # X_j'y_j; the correction is 0 in exact arithmetic
        norm = float(np.linalg.norm(w))
        if norm <= 1e-12 * max(1.0, float(np.linalg.norm(x_train))):
            break
        w /= norm
        t = x @ w - t_prev @ (p_prev.T @ w)
        tt = float(t @ t)
        if tt <= 0.0:
            break
        weights[:, j], scores[:, j] = w, t
        loadings[:, j] = (x.T @ t - p_prev @ (t_prev.T @ t)) / tt
        q[j] = float(y @ t) / tt
        y = y - q[j] * t
        done = j + 1
    if done == 0:
        return np.full((len(x_test), n_components), y_mean)
    w, pl = weights[:, :done], loadings[:, :done]
    rotations = w @ np.linalg.inv(pl.T @ w)
    path = y_mean + y_std * np.cumsum((((x_test - x_mean) / x_std) @ rotations) * q[:done], axis=1)
    if done < n_components:
        path = np.hstack([path, np.repeat(path[:, -1:], n_components - done, axis=1)])
    return path


def fold_rmse(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """RMSE of each column of ``predicted`` ``(n, m)`` against ``observed`` ``(n,)``: ``(m,)``."""
    return np.sqrt(np.mean((predicted - observed[:, None]) ** 2, axis=0))


def score_pls(name: str, features: np.ndarray, target: np.ndarray, splits: Splits, top: int,
              scale: bool) -> MemberScore:
    """The number of components 1..``top`` with the lowest mean fold RMSE (ties: the fewest)."""
    rmse = np.empty((len(splits), top))
    for i, (train, test) in enumerate(splits):
        path = pls_path_predictions(features[train], target[train], features[test], top, scale)
        rmse[i] = fold_rmse(path, target[test])
    mean = rmse.mean(axis=0)
    best = int(np.argmin(mean))
    return MemberScore(name, {"n_components": best + 1}, float(mean[best]), float(rmse[:, best].std()),
                       tuple(float(v) for v in rmse[:, best]))


def score_grid(name: str, features: np.ndarray, target: np.ndarray, splits: Splits, regressor: BaseEstimator,
               grid: dict[str, list]) -> MemberScore:
    """Any other regressor: scikit-learn's grid search on the same folds."""
    search = GridSearchCV(regressor, grid or [{}], cv=splits, scoring="neg_root_mean_squared_error", refit=False)
    search.fit(features, target)
    i, results = search.best_index_, search.cv_results_
    folds = tuple(float(-results[f"split{k}_test_score"][i]) for k in range(len(splits)))
    return MemberScore(name, dict(search.best_params_), float(-results["mean_test_score"][i]),
                       float(results["std_test_score"][i]), folds)


def paired_gap(member: MemberScore, best: MemberScore, folds: int) -> tuple[float, float]:
    """Mean and standard error of ``member``'s fold RMSEs minus ``best``'s (paired: the same folds).

    With repeated K-fold the gaps of all repeats give the spread but only ``folds`` count as
    independent: the repeats reuse the same samples.
    """
    gap = np.asarray(member.fold_rmse) - np.asarray(best.fold_rmse)
    if gap.size < 2:
        return float(member.cv_rmse - best.cv_rmse), 0.0
    return float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(min(folds, gap.size)))


def choose(scores: list[MemberScore], tolerance_se: float = 0.0, folds: int = 10) -> MemberScore:
    """The member with the lowest CV RMSE if it beats the first member by more than ``tolerance_se`` paired
    standard errors (over the same folds); otherwise the first member (plain PLS, the fallback).

    A one-sided paired test against the declared fallback: leave it only when the gain is clearly more
    than fold-to-fold noise (Dietterich 1998, *Approximate statistical tests for comparing supervised
    classification learning algorithms*, Neural Comput. 10(7), 1895-1923; the standard-error margin is
    that of the one-standard-error rule, Hastie, Tibshirani & Friedman 2009, *The Elements of Statistical
    Learning*, 2nd ed., sec. 7.10). So the chosen member never has a higher CV RMSE than the first.
    ``tolerance_se=0`` is the lowest CV RMSE (a tie goes to the member declared first).

    Raises:
        ValueError: ``scores`` is empty.
    """
    if not scores:
        raise ValueError("no member scores to choose from")
    first = scores[0]
    best = min(scores, key=lambda s: s.cv_rmse)  # min keeps the first of equal keys
    mean, se = paired_gap(best, first, folds)
    return best if -mean > tolerance_se * se else first
