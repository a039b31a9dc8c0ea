"""``soilci.json``: what a trained model is, written by the trainer beside the MLflow model files.

Read by evaluate, register, publish-image and the model API; nobody indexes it as a dict.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from soil_contracts._record import Record
from soil_contracts.bands import SpectralAxis
from soil_contracts.library import Scale

METADATA_FILE = "soilci.json"
SCHEMA_VERSION = 2


class ModelMetadata(Record):
    """Lineage and identity of one trained model (``<model dir>/soilci.json``).

    Attributes:
        name: registered model name (``register.model_name``).
        version: registry version, stamped by register/publish-image; None until registered.
        git_revision: commit the model was trained from.
        data_version: md5 over the training files' md5s (same id as the MLflow tag).
        data_files: training file name -> md5.
        target: the predicted column (``SOC_target``); target_unit: its unit (``%``, ``pH``).
        spectral_axis, scale: what the input spectra are (the library's canonical form).
        bands: input band columns, in model order (``wl_350`` ...).
        model: model family (``pls``, ``ridge``, ``random_forest``).
        best_params: hyperparameters chosen by cross-validation.
        metrics: training/CV metrics (``cv_rmse`` ...).
        run_id, model_id: the MLflow run and logged model.
    """

    kind: str = "model metadata"
    FILE: ClassVar[str] = METADATA_FILE

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str | None = None
    git_revision: str
    data_version: str
    data_files: dict[str, str] = Field(default_factory=dict)
    target: str = Field(min_length=1)
    target_unit: str = Field(min_length=1)
    spectral_axis: SpectralAxis = SpectralAxis.WAVELENGTH_NM
    scale: Scale = Scale.REFLECTANCE_PERCENT
    bands: list[str] = Field(min_length=1)
    model: str
    best_params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    run_id: str | None = None
    model_id: str | None = None
