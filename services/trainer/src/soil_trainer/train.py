"""train stage: fit the model on the library's training rows, log the run to MLflow, save models/model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soil_contracts.bands import SpectralAxis
from soil_contracts.domain import ApplicabilityDomain, CalibrationSample
from soil_contracts.git import git_revision
from soil_contracts.library import Scale
from soil_contracts.model import MemberScore, ModelMetadata, PipelineSelection
from soil_contracts.redact import redact, redact_url
from soil_trainer.config import TrainParams
from soil_trainer.conformal import conformal_half_widths, interval_method
from soil_trainer.domain import calibration_sample, fit_domain, preprocess
from soil_trainer.errors import DataError, TrackingError
from soil_trainer.model import FittedModel, fit_model
from soil_trainer.saved_model import quiet_input_example, save_model_dir, save_options
from soil_trainer.tables import BENCHMARK, SAMPLE_ID, TRAINING, check_frame, read_table
from soil_trainer.tracking import (
    configure_mlflow,
    data_version,
    ensure_reachable,
    experiment_name,
    file_md5,
    log_model_records,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetSpec:
    """What the model predicts (``prepare.target``, ``prepare.unit``) and what its spectra are (``library``)."""

    name: str
    unit: str
    axis: SpectralAxis
    scale: Scale


@dataclass(frozen=True)
class TrainingSet:
    """Rows the model is fitted on, after the missing-target rule, and where they came from."""

    spectra: pd.DataFrame  # band columns only, float64, in band order
    target: np.ndarray
    bands: list[str]
    n_dropped: int
    files: dict[str, str]  # file name -> md5


def load_training_set(data_dir: Path, target: str) -> TrainingSet:
    """``training.parquet`` (every library batch, each sample once); rows without a target are dropped and counted.

    The benchmark set must share no ``sample_id`` with it: it is never trained on (prepare also
    refuses benchmark spectra by content).
    """
    data_dir = Path(data_dir)
    path = data_dir / TRAINING
    rows = read_table(path)
    bands = check_frame(rows, path, target)
    files = {TRAINING: file_md5(path)}

    benchmark_path = data_dir / BENCHMARK
    benchmark = read_table(benchmark_path)
    if SAMPLE_ID not in benchmark.columns:
        raise DataError(f"{benchmark_path}: no {SAMPLE_ID} column")
    overlap = sorted(set(benchmark[SAMPLE_ID].astype(str)) & set(rows[SAMPLE_ID].astype(str)))
    if overlap:
        raise DataError(
            f"{benchmark_path}: {len(overlap)} benchmark samples are also in {TRAINING} "
            f"(e.g. {overlap[0]}); the benchmark set must never be trained on"
        )

    missing = rows[target].isna()
    n_dropped = int(missing.sum())
    if n_dropped:
        log.warning("dropped %d rows with a missing %s (not imputed)", n_dropped, target)
    rows = rows[~missing]
    if rows.empty:
        raise DataError(f"{data_dir}: every training row has a missing {target}")
    if float(rows[target].std(ddof=0)) == 0.0:
        raise DataError(f"{path}: every training row has the same {target}; nothing to learn")
    return TrainingSet(
        spectra=rows[bands].astype("float64").reset_index(drop=True),
        target=rows[target].to_numpy(dtype=float),
        bands=bands,
        n_dropped=n_dropped,
        files=files,
    )


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params as dotted keys, e.g. ``train.pls.max_components``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(f"{prefix}.{key}", sub))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: ",".join(str(v) for v in value)}
    return {prefix: value}


def calibration_domain(
    fitted: FittedModel, training: TrainingSet, target: TargetSpec, params: TrainParams
) -> ApplicabilityDomain:
    """The model's applicability domain and cross-conformal intervals (same folds and seed as the search)."""
    regressor = fitted.pipeline.steps[-1][1]
    features = preprocess(fitted.pipeline, training.spectra)
    widths = conformal_half_widths(regressor, features, training.target, fitted.cv_folds, params.seed)
    return fit_domain(fitted.pipeline, training.spectra, training.target, target_name=target.name,
                      target_unit=target.unit, scale=target.scale, intervals=widths,
                      interval_method=interval_method(fitted.cv_folds), seed=params.seed)


def pipeline_selection(fitted: FittedModel, params: TrainParams) -> PipelineSelection:
    """The family, the choice and every member's inner-CV score, as ``soilci.json`` records them."""
    members = [
        MemberScore(name=s.name, steps=params.family[s.name].model_dump(mode="json", exclude_defaults=True),
                    best_params=s.best_params, cv_rmse=round(s.cv_rmse, 6), cv_rmse_std=round(s.cv_rmse_std, 6))
        for s in fitted.scores
    ]
    return PipelineSelection(chosen=fitted.member, cv_folds=fitted.cv_folds, cv_repeats=params.cv_repeats,
                             seed=params.seed, tolerance_se=params.select_tolerance_se,
                             min_rows=params.select_min_rows, rule="lowest_beats_first", members=members)


def selection_table(selection: PipelineSelection) -> dict[str, list]:
    """One row per member (columns as lists, for ``mlflow.log_table``)."""
    return {
        "member": [m.name for m in selection.members],
        "steps": [",".join(f"{k}={v}" for k, v in m.steps.items()) or "none" for m in selection.members],
        "best_params": [",".join(f"{k}={v}" for k, v in m.best_params.items()) for m in selection.members],
        "cv_rmse": [m.cv_rmse for m in selection.members],
        "cv_rmse_std": [m.cv_rmse_std for m in selection.members],
        "chosen": [m.name == selection.chosen for m in selection.members],
    }


def training_metrics(fitted: FittedModel, training: TrainingSet, domain: ApplicabilityDomain) -> dict[str, float]:
    metrics = {
        "cv_rmse": round(fitted.cv_rmse, 6),
        "cv_rmse_std": round(fitted.cv_rmse_std, 6),
        "n_train": len(training.target),
        "n_dropped": training.n_dropped,
        "domain_components": len(domain.components),
    }
    for width in domain.intervals:
        metrics[f"interval_{round(width.coverage * 100)}_half_width"] = round(width.half_width, 6)
    metrics.update({k: v for k, v in fitted.best_params.items() if isinstance(v, (int, float))})
    return metrics


def log_run(
    fitted: FittedModel,
    training: TrainingSet,
    params: TrainParams,
    metadata: ModelMetadata,
    signature,
) -> dict[str, str | None]:
    """Log one MLflow run (params, CV metrics, lineage, the model); returns ``run_id`` and ``model_id``."""
    import mlflow
    import mlflow.sklearn

    uri = configure_mlflow()

    def _log() -> dict[str, str | None]:
        mlflow.set_experiment(experiment_name(metadata.name))
        with mlflow.start_run(run_name=f"train-{params.model}") as run:
            mlflow.log_params(
                {
                    **flatten("train", params.model_dump(mode="json")),
                    "prepare.target": metadata.target,
                    "prepare.unit": metadata.target_unit,
                    **flatten("best", fitted.best_params),
                    "best.member": fitted.member,
                    "data_version": metadata.data_version,
                    **{f"data.{name}.md5": md5 for name, md5 in training.files.items()},
                }
            )
            mlflow.log_metrics(metadata.metrics)
            if metadata.selection is not None:
                mlflow.log_metrics({f"family.{m.name}.cv_rmse": m.cv_rmse for m in metadata.selection.members})
                mlflow.log_param("selection.rule", metadata.selection.rule)
                mlflow.log_table(selection_table(metadata.selection), artifact_file="selection.json")
            mlflow.set_tags(
                {
                    "git_revision": metadata.git_revision,
                    "mlflow.source.git.commit": metadata.git_revision,
                    "data_version": metadata.data_version,
                    "target": metadata.target,
                    "target_unit": metadata.target_unit,
                }
            )
            with quiet_input_example():
                info = mlflow.sklearn.log_model(
                    fitted.pipeline,
                    name="model",
                    signature=signature,
                    input_example=training.spectra.head(1),
                    **save_options(),
                )
        return {"run_id": run.info.run_id, "model_id": info.model_id}

    # One attempt that writes: a half-logged run is marked FAILED by start_run's context manager.
    try:
        return _log()
    except Exception as exc:
        raise TrackingError(f"logging the run to {redact_url(uri)} failed: {str(exc).splitlines()[0][:300]}") from exc


def model_signature(fitted: FittedModel, spectra: pd.DataFrame):
    """Input: one float64 column per band, in band order; output: the predicted target."""
    from mlflow.models import infer_signature

    example = spectra.head(5)
    return infer_signature(example, pd.Series(fitted.pipeline.predict(example).reshape(-1), name="prediction"))


def train(
    params: TrainParams,
    target: TargetSpec,
    model_name: str,
    data_dir: Path,
    model_dir: Path,
) -> ModelMetadata:
    """Fit, log the run, save the model directory; returns its ``soilci.json``.

    Inputs are checked first, then the tracking server (so an unreachable one fails the stage
    before the fit); nothing is written unless the run was logged.
    """
    training = load_training_set(data_dir, target.name)
    ensure_reachable(configure_mlflow())
    log.info("training %s on %d rows x %d bands", params.model, len(training.target), len(training.bands))
    fitted = fit_model(training.spectra, training.target, params)
    for score in fitted.scores:
        log.info("family member %-12s CV RMSE %.4f (%s)", score.name, score.cv_rmse, score.best_params)
    log.info("chose %s %s, CV RMSE %.4f", fitted.member, fitted.best_params, fitted.cv_rmse)
    domain = calibration_domain(fitted, training, target, params)
    log.info("domain: %d components (%.3f of the variance); %.0f%% interval +-%.4g %s", len(domain.components),
             domain.explained_variance, domain.default_coverage * 100,
             domain.intervals[0].half_width, target.unit)
    metadata = ModelMetadata(
        name=model_name,
        version=None,
        git_revision=git_revision(),
        data_version=data_version(training.files),
        data_files=training.files,
        target=target.name,
        target_unit=target.unit,
        spectral_axis=target.axis,
        scale=target.scale,
        bands=training.bands,
        model=params.model,
        best_params=fitted.best_params,
        selection=pipeline_selection(fitted, params),
        metrics=training_metrics(fitted, training, domain),
    )
    calibration = calibration_sample(training.spectra, target.scale, params.seed)
    signature = model_signature(fitted, training.spectra)
    ids = log_run(fitted, training, params, metadata, signature)
    metadata = metadata.model_copy(update=ids)
    try:
        log_model_records(metadata.model_id, metadata, domain, calibration)
    except Exception as exc:
        raise TrackingError(f"uploading {ModelMetadata.FILE}, {ApplicabilityDomain.FILE} and "
                            f"{CalibrationSample.FILE} to the logged model failed: "
                            f"{redact(str(exc).splitlines()[0][:300])}") from exc
    save_model_dir(fitted.pipeline, metadata, model_dir, signature, domain=domain,
                   input_example=training.spectra.head(1), calibration=calibration)
    log.info("wrote %s", model_dir)
    return metadata
