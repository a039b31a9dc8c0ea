"""The trained-model directory: an MLflow model plus ``soilci.json``, written by train, read by the rest.

It holds what train, evaluate and register share about that directory, so evaluate and register
need not import the training code.
"""

from __future__ import annotations

import hashlib
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
from soil_trainer.errors import DataError

SERIALIZATION = "pickle"  # plain pickle: loads with numpy, scipy and scikit-learn alone


def pip_requirements() -> list[str]:
    """What the pickled pipeline needs to load: numpy, scipy, scikit-learn at their versions."""
    import numpy
    import scipy
    import sklearn

    return [f"numpy=={numpy.__version__}", f"scipy=={scipy.__version__}", f"scikit-learn=={sklearn.__version__}"]


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
                serialization_format=SERIALIZATION,
                pip_requirements=pip_requirements(),
                input_example=input_example,
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
    """The scikit-learn pipeline and the metadata of a trained model directory (see ``load_metadata``)."""
    import mlflow.sklearn

    metadata = load_metadata(model_dir)
    return mlflow.sklearn.load_model(str(model_dir)), metadata


def model_digest(model_dir: Path) -> str:
    """sha256 over the directory's files: each relative POSIX name and its bytes' sha256, names sorted.

    Two directories with the same files and bytes have the same digest, wherever they are; any
    change to a file, its name or the set of files changes it.
    """
    model_dir = Path(model_dir)
    files = sorted((p.relative_to(model_dir).as_posix(), p) for p in model_dir.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()
