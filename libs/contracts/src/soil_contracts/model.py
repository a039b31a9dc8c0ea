"""``soilci.json``: what a trained model is, written by the trainer beside the MLflow model files.

Read by evaluate, register, publish-image and the model API; nobody indexes it as a dict.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from soil_contracts._record import Record
from soil_contracts.bands import SpectralAxis
from soil_contracts.library import Scale

METADATA_FILE = "soilci.json"
SCHEMA_VERSION = 3  # 3 adds ``selection``; a version 2 file (no selection) still loads


class MemberScore(BaseModel):
    """One member of ``train.family`` as inner cross-validation scored it on the training rows.

    Attributes:
        name: the member's name (``train.family`` key); steps: its preprocessing (``train.family.<name>``).
        best_params: its best hyperparameters on these folds (``n_components`` ...).
        cv_rmse: mean over folds of each fold's RMSE there, in target units; cv_rmse_std: their spread.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    steps: dict[str, Any] = Field(default_factory=dict)
    best_params: dict[str, Any] = Field(default_factory=dict)
    cv_rmse: float
    cv_rmse_std: float


class PipelineSelection(BaseModel):
    """Which family member ``train`` chose, by K-fold CV on the training rows only (never the benchmark).

    Attributes:
        chosen: the chosen member's name, by ``rule``: ``lowest_beats_first`` (since 2026-11-30), the one
            with the lowest ``cv_rmse`` if it beats the first member by more than ``tolerance_se`` paired
            standard errors, else the first; ``first_within`` (files without ``rule``), the first member
            within ``tolerance_se`` paired standard errors of the lowest. 0: the lowest, for both.
        cv_folds, cv_repeats, seed: the folds every member was scored on (repeated shuffled K-fold).
        min_rows: below this many training rows only the first member is scored (no choice).
        members: every scored member, in declaration order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chosen: str = Field(min_length=1)
    cv_folds: int = Field(ge=2)
    cv_repeats: int = Field(default=1, ge=1)
    seed: int
    tolerance_se: float = Field(default=0.0, ge=0)
    min_rows: int = Field(default=0, ge=0)
    rule: Literal["first_within", "lowest_beats_first"] = "first_within"
    members: list[MemberScore] = Field(min_length=1)


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
        selection: the preprocessing pipeline chosen among ``train.family`` and every member's CV score
            (None in version 2 files).
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
    selection: PipelineSelection | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    run_id: str | None = None
    model_id: str | None = None
