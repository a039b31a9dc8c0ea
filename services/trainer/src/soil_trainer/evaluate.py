"""evaluate stage: score the saved model on the fixed benchmark set only.

Writes ``metrics.json`` (flat numbers, with the target, its unit and the benchmark content hash), per-sample
predictions and the prediction-error histogram. The last two are the stage's DVC plots (dvc.yaml), which
``dvc plots show`` draws; the PR report draws its own figures from the predictions. So the stage draws no
image and does not import matplotlib.
Every number is rounded and keys are sorted, so the same model and data give identical files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soil_contracts.domain import ApplicabilityDomain
from soil_contracts.files import atomic_paths
from soil_contracts.model import ModelMetadata
from soil_trainer.config import EvaluateParams
from soil_trainer.domain import out_of_domain, preprocess
from soil_trainer.errors import DataError, GateError, ParamsError
from soil_trainer.library.content import content_sha256
from soil_trainer.saved_model import load_domain, load_model
from soil_trainer.tables import SAMPLE_ID, check_frame, read_table

log = logging.getLogger(__name__)

DECIMALS = 6
ERROR_CSV = "prediction_error.csv"
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class Scored:
    predictions: pd.DataFrame  # sample_id, observed, predicted, residual (= predicted - observed)
    metrics: dict[str, Any]  # numbers, plus the target, its unit and the benchmark's content hash


def regression_metrics(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, bias (mean predicted - observed), R2, RPD (SD/RMSE), RPIQ (IQR/RMSE)."""
    observed = np.asarray(observed, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    error = predicted - observed
    rmse = float(np.sqrt(np.mean(error**2)))
    ss_tot = float(np.sum((observed - observed.mean()) ** 2))
    sd = float(np.std(observed, ddof=1)) if len(observed) > 1 else float("nan")
    q1, q3 = np.percentile(observed, [25, 75])
    return {
        "rmse": rmse,
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
        "r2": 1.0 - float(np.sum(error**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "rpd": sd / rmse if rmse > 0 else float("inf"),
        "rpiq": float(q3 - q1) / rmse if rmse > 0 else float("inf"),
    }


def domain_metrics(
    domain: ApplicabilityDomain, pipeline: Any, spectra: pd.DataFrame, observed: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    """What serving's context is worth on the benchmark: the share of samples inside their served
    interval (``interval_coverage`` at ``interval_nominal``) and the share flagged out of domain."""
    width = domain.interval(domain.default_coverage)
    flagged = out_of_domain(domain, spectra.to_numpy(dtype=float), preprocess(pipeline, spectra))
    return {
        "interval_nominal": width.coverage,
        "interval_coverage": float(np.mean(np.abs(observed - predicted) <= width.half_width)),
        "out_of_domain_rate": float(np.mean(flagged)),
    }


def score_benchmark(
    pipeline: Any, meta: ModelMetadata, benchmark: pd.DataFrame, path: Path, target: str,
    domain: ApplicabilityDomain | None = None,
) -> Scored:
    """Predict every benchmark row with a target; rows without one are dropped and counted."""
    if meta.target != target:
        raise ParamsError(
            f"prepare.target: {target!r}, but the model in models was trained on {meta.target!r}; rerun train"
        )
    bands = meta.bands
    for column in (SAMPLE_ID, target):
        if column not in benchmark.columns:
            raise DataError(f"{path}: no {column} column")
    missing = [b for b in bands if b not in benchmark.columns]
    if missing:
        raise DataError(f"{path}: missing {len(missing)} bands the model needs (e.g. {missing[0]})")
    check_frame(benchmark[[SAMPLE_ID, target, *bands]], path, target, bands)
    has_target = benchmark[target].notna()
    n_dropped = int((~has_target).sum())
    if n_dropped:
        log.warning("%s: dropped %d benchmark rows with a missing %s", path, n_dropped, target)
    rows = benchmark[has_target].reset_index(drop=True)
    if len(rows) < 2:
        raise DataError(f"{path}: fewer than 2 benchmark rows with a {target} value")
    observed = rows[target].to_numpy(dtype=float)
    predicted = np.asarray(pipeline.predict(rows[bands].astype("float64")), dtype=float).reshape(-1)
    predictions = pd.DataFrame(
        {
            SAMPLE_ID: rows[SAMPLE_ID].astype(str),
            "observed": observed,
            "predicted": predicted.round(DECIMALS),
            "residual": (predicted - observed).round(DECIMALS),  # the sign of bias: + predicts too high
        }
    )
    train_metrics = meta.metrics
    metrics: dict[str, Any] = {
        k: round(v, DECIMALS) for k, v in regression_metrics(observed, predicted).items()
    }
    if domain is not None:  # a model trained before domain.json existed has neither figure
        metrics.update({k: round(v, DECIMALS) for k, v in
                        domain_metrics(domain, pipeline, rows[bands].astype("float64"), observed, predicted).items()})
    metrics.update(
        {
            "n_benchmark": len(rows),
            "n_train": int(train_metrics.get("n_train", 0)),
            "n_dropped": int(train_metrics.get("n_dropped", 0)) + n_dropped,
            # What the numbers are of: two metrics files compare only when these three agree.
            "target": meta.target,
            "unit": meta.target_unit,
            "benchmark_sha256": content_sha256(benchmark[[SAMPLE_ID, target, *bands]]),
        }
    )
    return Scored(predictions=predictions, metrics=metrics)


def error_histogram(residuals: np.ndarray) -> pd.DataFrame:
    """Counts of residuals in equal-width bins, symmetric around zero (DVC plot data)."""
    edge = float(np.max(np.abs(residuals))) or 1.0
    counts, edges = np.histogram(residuals, bins=HISTOGRAM_BINS, range=(-edge, edge))
    centres = (edges[:-1] + edges[1:]) / 2
    return pd.DataFrame({"residual": centres.round(DECIMALS), "count": counts})


def write_outputs(scored: Scored, metrics_path: Path, predictions_path: Path, plots_dir: Path) -> None:
    """metrics.json, predictions.csv and the error histogram's data, all-or-nothing (``atomic_paths``).

    Raises:
        DataError: an output cannot be written (a directory, a file where the plots folder goes);
            then none is.
    """
    dests = [Path(metrics_path), Path(predictions_path), Path(plots_dir) / ERROR_CSV]
    try:
        with atomic_paths(dests) as temps:
            temps[0].write_text(json.dumps(scored.metrics, indent=2, sort_keys=True) + "\n")
            scored.predictions.to_csv(temps[1], index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")
            error_histogram(scored.predictions["residual"].to_numpy()).to_csv(temps[2], index=False)
    except OSError as exc:
        raise DataError(f"{exc.filename or plots_dir}: cannot write output ({exc.strerror or exc}); nothing "
                        "was written") from exc


def evaluate(
    params: EvaluateParams,
    target: str,
    model_dir: Path,
    benchmark_path: Path,
    metrics_path: Path,
    predictions_path: Path,
    plots_dir: Path,
) -> Scored:
    """Score, write every output, then apply the ``evaluate.rmse_max`` gate (GateError, exit 1)."""
    pipeline, meta = load_model(model_dir)
    benchmark = read_table(benchmark_path)
    scored = score_benchmark(pipeline, meta, benchmark, Path(benchmark_path), target, load_domain(model_dir))
    write_outputs(scored, metrics_path, predictions_path, plots_dir)
    log.info("benchmark: %s", json.dumps(scored.metrics, sort_keys=True))
    if params.rmse_max is not None and scored.metrics["rmse"] > params.rmse_max:
        raise GateError(
            f"benchmark RMSE {scored.metrics['rmse']:.4f} is above evaluate.rmse_max {params.rmse_max}"
        )
    return scored
