"""The trained-model directory: an MLflow model plus ``soilci.json``, written by train, read by the rest.

It holds what train, evaluate and register share about that directory, so evaluate and register
need not import the training code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from soil_contracts.domain import ApplicabilityDomain, CalibrationSample
from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import SERIALIZATION, TRUSTED_TYPES, load_estimator, model_digest
from soil_trainer.errors import DataError

__all__ = ["SERIALIZATION", "load_domain", "load_metadata", "load_model", "model_digest", "pip_requirements",
           "save_model_dir", "save_options"]


def pip_requirements() -> list[str]:
    """What the saved pipeline needs to load: numpy, scipy, scikit-learn and skops at their versions."""
    import numpy
    import scipy
    import sklearn
    import skops

    return [f"numpy=={numpy.__version__}", f"scipy=={scipy.__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}"]


def save_options() -> dict[str, Any]:
    """MLflow save/log arguments: skops, never pickle (``soil_contracts.model_file`` loads nothing else).

    The trusted-types list MLflow writes into MLmodel is informative only: loaders use their own.
    """
    return {"serialization_format": SERIALIZATION, "skops_trusted_types": list(TRUSTED_TYPES),
            "pip_requirements": pip_requirements()}


@contextmanager
def quiet_input_example() -> Iterator[None]:
    """MLflow's input-example code trips a pandas deprecation warning that says nothing about our data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        yield


def save_model_dir(
    pipeline: Any,
    metadata: ModelMetadata,
    model_dir: Path,
    signature,
    domain: ApplicabilityDomain | None = None,
    input_example: Any = None,
    calibration: CalibrationSample | None = None,
) -> None:
    """Write the MLflow model directory beside ``model_dir`` and swap it in only when complete.

    ``domain`` is saved as ``domain.json`` beside ``soilci.json``; ``input_example`` (one real
    training spectrum) is what the model API's self-check and OpenAPI example use; ``calibration``
    (``calibration_sample.json``) is what its live drift check compares recent requests with.
    """
    import mlflow.sklearn

    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    try:
        target = staging / "model"
        with quiet_input_example():
            mlflow.sklearn.save_model(
                pipeline,
                target,
                signature=signature,
                input_example=input_example,
                **save_options(),
            )
        metadata.save(target / ModelMetadata.FILE)
        if domain is not None:
            domain.save(target / ApplicabilityDomain.FILE)
        if calibration is not None:
            calibration.save(target / CalibrationSample.FILE)
        old = staging / "old"
        if model_dir.exists():
            os.replace(model_dir, old)
        os.replace(target, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_metadata(model_dir: Path) -> ModelMetadata:
    """``soilci.json`` of a trained model directory.

    Raises:
        DataError: the directory lacks ``MLmodel`` or ``soilci.json`` (train has not run).
        soil_contracts.errors.ContractError: ``soilci.json`` is not valid model metadata.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").exists() or not (model_dir / ModelMetadata.FILE).exists():
        raise DataError(
            f"{model_dir}: not a trained model directory (needs MLmodel and {ModelMetadata.FILE}); run train"
        )
    return ModelMetadata.load(model_dir / ModelMetadata.FILE)


def load_domain(model_dir: Path) -> ApplicabilityDomain | None:
    """``domain.json`` of a trained model directory; None for a model trained before it existed."""
    path = Path(model_dir) / ApplicabilityDomain.FILE
    return ApplicabilityDomain.load(path) if path.exists() else None


def load_model(model_dir: Path) -> tuple[Any, ModelMetadata]:
    """The scikit-learn pipeline and the metadata of a trained model directory (see ``load_metadata``).

    Loaded by ``soil_contracts.model_file.load_estimator``: skops with soil-ci's type allowlist.

    Raises:
        soil_contracts.errors.UntrustedModelError: a pickle model or a type outside the allowlist (exit 5).
    """
    metadata = load_metadata(model_dir)
    return load_estimator(Path(model_dir)), metadata
