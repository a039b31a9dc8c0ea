"""params.yaml sections read by the trainer's stages, parsed once into frozen models."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from soil_contracts.errors import ContractError
from soil_contracts.library import LibrarySpec
from soil_contracts.params import read_params_file
from soil_trainer.errors import ParamsError

T = TypeVar("T", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrepareParams(_Section):
    """params.yaml ``prepare``: what the model predicts, in which unit (every batch must declare the same)."""

    target: str = Field(min_length=1)  # a target column of the library's batches, e.g. SOC_target
    unit: str = Field(min_length=1)  # its unit, e.g. "%" for SOC, "pH" for pH


class _StrictSection(_Section):
    """Hyperparameters: a value of the wrong type is an error, never silently coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PreprocessingParams(_StrictSection):
    """Per-spectrum preprocessing of one family member; every step is stateless, so it never leaks across CV
    folds. Every step is off by default: ``{}`` is plain PLS on the spectra as they are."""

    absorbance: bool = False  # reflectance R -> absorbance log10(1/R)
    resample_step: Annotated[float, Field(ge=0)] = 0.0  # grid step in the bands' unit (nm or cm-1); 0: native
    snv: bool = False  # standard normal variate
    savgol_window: Annotated[int, Field(ge=0)] = 0  # odd window in grid points; 0 disables
    savgol_polyorder: Annotated[int, Field(ge=0)] = 2
    savgol_deriv: Annotated[int, Field(ge=0, le=2)] = 1

    @model_validator(mode="after")
    def _savgol_window_fits(self) -> PreprocessingParams:
        if self.savgol_window:
            if self.savgol_window % 2 == 0:
                raise ValueError(f"savgol_window must be odd, got {self.savgol_window}")
            if self.savgol_window <= self.savgol_polyorder:
                raise ValueError("savgol_window must be larger than savgol_polyorder")
            if self.savgol_deriv > self.savgol_polyorder:
                raise ValueError("savgol_deriv must not exceed savgol_polyorder")
        return self

    def steps(self) -> tuple:
        """What the member does (Savitzky-Golay settings only count when its window is on)."""
        savgol = (self.savgol_window, self.savgol_polyorder, self.savgol_deriv) if self.savgol_window else None
        return (self.absorbance, self.resample_step, self.snv, savgol)


class PlsParams(_StrictSection):
    """PLS regression; the number of components is chosen by K-fold cross-validation."""

    max_components: Annotated[int, Field(ge=1, le=100)] = 20
    cv_folds: Annotated[int, Field(ge=2, le=50)] = 10
    scale: bool = False  # divide bands by their standard deviation (spectra: usually only centred)


class RidgeParams(_StrictSection):
    """Ridge regression; alpha is chosen by K-fold cross-validation among ``alphas`` (at most 100: each one
    is a fit per fold, so a long list would only make train slow)."""

    alphas: Annotated[tuple[Annotated[float, Field(gt=0)], ...], Field(min_length=1, max_length=100, strict=False)] = (
        0.01, 0.1, 1.0, 10.0, 100.0,
    )
    cv_folds: Annotated[int, Field(ge=2, le=50)] = 10


class RandomForestParams(_StrictSection):
    """Random forest with fixed hyperparameters (``random_state`` is ``train.seed``)."""

    n_estimators: Annotated[int, Field(ge=1, le=5000)] = 300
    min_samples_leaf: Annotated[int, Field(ge=1)] = 2
    max_features: Annotated[float, Field(gt=0, le=1)] = 0.3
    cv_folds: Annotated[int, Field(ge=2, le=50)] = 10


MEMBER_NAME = r"^[a-z][a-z0-9_]*$"
MAX_FAMILY = 12  # bounds the search: each member costs one K-fold CV of the regressor


class TrainParams(_StrictSection):
    """params.yaml ``train``: the family of preprocessing pipelines, the regressor and its settings.

    ``family`` maps a member's name to its preprocessing, in order of preference. ``train`` scores every
    member by K-fold CV on the training rows (the regressor's ``cv_folds``, shuffled with ``seed``, the
    same folds for every member) and keeps the member with the lowest CV RMSE when it beats the first member
    by more than ``select_tolerance_se`` paired standard errors, else the first (0: the lowest). One member, or fewer
    than ``select_min_rows`` training rows: the first member, with no choice (its components are still
    chosen by CV).
    """

    model: Literal["pls", "ridge", "random_forest"] = "pls"
    seed: int = 2025
    select_tolerance_se: Annotated[float, Field(ge=0, le=5)] = 1.5
    select_min_rows: Annotated[int, Field(ge=0)] = 60  # fewer training rows: the first member, no choice
    cv_repeats: Annotated[int, Field(ge=1, le=10)] = 1  # repeated K-fold: less noise in the choice
    family: Annotated[
        dict[Annotated[str, Field(pattern=MEMBER_NAME, max_length=40)], PreprocessingParams],
        Field(min_length=1, max_length=MAX_FAMILY),
    ] = {"plain": PreprocessingParams()}
    pls: PlsParams = PlsParams()
    ridge: RidgeParams = RidgeParams()
    random_forest: RandomForestParams = RandomForestParams()

    @field_validator("family")
    @classmethod
    def _members_differ(cls, family: dict[str, PreprocessingParams]) -> dict[str, PreprocessingParams]:
        seen: dict[tuple, str] = {}
        for name, member in family.items():
            key = member.steps()
            if key in seen:
                raise ValueError(f"members {seen[key]!r} and {name!r} are the same pipeline")
            seen[key] = name
        return family

    @property
    def cv_folds(self) -> int:
        """K of the K-fold CV that chooses the member and the regressor's hyperparameters."""
        return {"pls": self.pls, "ridge": self.ridge, "random_forest": self.random_forest}[self.model].cv_folds


class EvaluateParams(_StrictSection):
    """params.yaml ``evaluate``: the benchmark gate."""

    rmse_max: Annotated[float, Field(gt=0)] | None = None  # exit 1 when benchmark RMSE is above this


class RegisterParams(_StrictSection):
    """params.yaml ``register``: the MLflow registered model and the alias a new version gets.

    ``model_name``: null derives the name from the target (``SOC_target`` -> ``soil-soc``), so a model of
    another soil property can never be registered under this one's name by accident.
    """

    model_name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] | None = None
    alias: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "staging"

    @field_validator("alias")
    @classmethod
    def _alias_not_reserved(cls, alias: str) -> str:
        if alias.lower() == "latest" or (alias[0] in "vV" and alias[1:].isdigit()):
            raise ValueError(f"{alias!r} is reserved by MLflow (latest, v<N>)")
        return alias


def load_library_spec(path: Path) -> LibrarySpec:
    """params.yaml ``library``: the library's place and canonical form."""
    return load_section(path, "library", LibrarySpec)


def format_validation_error(section: str, exc: ValidationError) -> str:
    """One line per problem, each naming the full key (e.g. ``train.pls.cv_folds``)."""
    lines = []
    for err in exc.errors():
        key = ".".join([section, *(str(p) for p in err["loc"])])
        lines.append(f"{key}: {err['msg']}" + (f" (got {err['input']!r})" if "input" in err else ""))
    return "; ".join(lines)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read params.yaml into a mapping; ParamsError names the file."""
    try:
        return read_params_file(path)
    except ContractError as exc:
        raise ParamsError(str(exc)) from None


def load_section(path: Path, section: str, model: type[T]) -> T:
    """Parse one top-level section of params.yaml into ``model``; unknown keys are errors."""
    raw = load_yaml(path).get(section)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: {section}: expected a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {format_validation_error(section, exc)}") from exc


class TrainerSettings(BaseSettings):
    """Where the trainer runs (``SOILCI_*`` env vars); MLflow's own ``MLFLOW_*`` stay MLflow's.

    ``SOILCI_GIT_REVISION`` is read by ``soil_contracts.git.git_revision``, like every package.
    """

    model_config = SettingsConfigDict(env_prefix="SOILCI_", extra="ignore")

    tracking_retries: int = Field(default=3, ge=1, le=20)  # attempts before "tracking server unreachable"
    tracking_backoff_s: float = Field(default=1.0, ge=0, le=60)  # first wait; doubles per attempt


@lru_cache
def get_settings() -> TrainerSettings:
    return TrainerSettings()
