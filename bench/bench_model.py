"""Model quality: the default soil-ci model against plain PLS on raw spectra, side by side.

For each LimeSoDa dataset, 10-fold cross-validation over LimeSoDa's own folds. Both models go
through the trainer's own ``fit_model`` (components chosen by inner 10-fold CV); they differ only
in ``train.preprocessing`` (params.yaml's against none at all). Reports the mean per-fold RMSE of
each (LimeSoDa's convention), their ratio, and paired bootstrap 95% intervals (samples resampled
within each fold, the same draw for both models).

    .venv/bin/python bench/bench_model.py [--datasets SSP.460 CV.98 NRW.115] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from soil_trainer.config import PrepareParams, PreprocessingParams, TrainParams, load_section
from soil_trainer.dataset import load_limesoda
from soil_trainer.model import fit_model, predict

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("SSP.460", "CV.98", "NRW.115")
GOAL_MEAN_RATIO = 0.90  # at least 10% lower RMSE on average
PLAIN = PreprocessingParams(absorbance=False, resample_step=0, snv=False, savgol_window=0)


def out_of_fold(name: str, target: str, params: TrainParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed values, out-of-fold predictions and fold ids over LimeSoDa's 10 folds."""
    data = load_limesoda(name, target)
    spectra = data.frame[data.bands].astype("float64")
    observed = data.frame[target].to_numpy(dtype=float)
    predicted = np.full_like(observed, np.nan)
    for fold in np.unique(data.folds):
        test = data.folds == fold
        fitted = fit_model(spectra[~test].reset_index(drop=True), observed[~test], params)
        predicted[test] = predict(fitted.pipeline, spectra[test])
    return observed, predicted, data.folds


def fold_rmse(observed: np.ndarray, predicted: np.ndarray, folds: np.ndarray, rows: np.ndarray) -> float:
    """Mean over folds of each fold's RMSE, for the sample indices ``rows``."""
    values = []
    for fold in np.unique(folds):
        idx = rows[folds[rows] == fold]
        values.append(np.sqrt(np.mean((predicted[idx] - observed[idx]) ** 2)))
    return float(np.mean(values))


def bootstrap_indices(folds: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Resample samples with replacement within each fold (keeps the fold structure)."""
    members = [np.flatnonzero(folds == f) for f in np.unique(folds)]
    return [np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members]) for _ in range(n_boot)]


def interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)

    default = load_section(args.params, "train", TrainParams)
    target = load_section(args.params, "prepare", PrepareParams).target
    plain = default.model_copy(update={"model": "pls", "preprocessing": PLAIN})
    rng = np.random.default_rng(default.seed)
    print(f"default: model={default.model} preprocessing={default.preprocessing.model_dump()}")
    print(f"plain:   PLS on raw spectra, pls={plain.pls.model_dump()}; target {target}\n")

    results, ratio_draws = {}, []
    started = time.monotonic()
    for name in args.datasets:
        t0 = time.monotonic()
        observed, pred_plain, folds = out_of_fold(name, target, plain)
        _, pred_default, _ = out_of_fold(name, target, default)
        every = np.arange(len(observed))
        rmse_plain = fold_rmse(observed, pred_plain, folds, every)
        rmse_default = fold_rmse(observed, pred_default, folds, every)
        draws_plain, draws_default = [], []
        for rows in bootstrap_indices(folds, args.bootstrap, rng):
            draws_plain.append(fold_rmse(observed, pred_plain, folds, rows))
            draws_default.append(fold_rmse(observed, pred_default, folds, rows))
        draws_plain, draws_default = np.array(draws_plain), np.array(draws_default)
        ratios = draws_default / draws_plain
        ratio_draws.append(ratios)
        results[name] = {
            "n": len(observed),
            "rmse_plain_pls": rmse_plain,
            "rmse_plain_pls_ci95": interval(draws_plain),
            "rmse_default": rmse_default,
            "rmse_default_ci95": interval(draws_default),
            "ratio": rmse_default / rmse_plain,
            "ratio_ci95": interval(ratios),
            "seconds": round(time.monotonic() - t0, 1),
        }
        r = results[name]
        print(
            f"{name:8s} n={r['n']:3d}  plain PLS {rmse_plain:.3f} [{r['rmse_plain_pls_ci95'][0]:.3f}, "
            f"{r['rmse_plain_pls_ci95'][1]:.3f}]  default {rmse_default:.3f} [{r['rmse_default_ci95'][0]:.3f}, "
            f"{r['rmse_default_ci95'][1]:.3f}]  ratio {r['ratio']:.3f} [{r['ratio_ci95'][0]:.3f}, "
            f"{r['ratio_ci95'][1]:.3f}]  ({r['seconds']:.0f}s)",
            flush=True,
        )

    mean_ratio = float(np.mean([results[n]["ratio"] for n in args.datasets]))
    mean_ci = interval(np.mean(np.vstack(ratio_draws), axis=0))
    worse = [n for n in args.datasets if results[n]["ratio"] > 1.0]
    met = mean_ratio <= GOAL_MEAN_RATIO and not worse
    print(
        f"\nmean ratio {mean_ratio:.3f} [{mean_ci[0]:.3f}, {mean_ci[1]:.3f}] "
        f"({(1 - mean_ratio) * 100:.1f}% lower RMSE on average); worse on: {', '.join(worse) or 'none'}"
    )
    print(f"goal (mean ratio <= {GOAL_MEAN_RATIO}, worse on none): {'met' if met else 'NOT met'}")
    print(f"total {time.monotonic() - started:.0f}s")
    if args.out:
        summary = {"datasets": results, "mean_ratio": mean_ratio, "mean_ratio_ci95": mean_ci, "goal_met": met}
        args.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
