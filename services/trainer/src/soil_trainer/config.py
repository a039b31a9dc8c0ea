"""params.yaml sections read by the trainer's stages, parsed once into frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soil_trainer.errors import ParamsError


T = TypeVar("T", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrepareParams(_Section):
    """How the LimeSoDa dataset is cut into reference, benchmark and incoming sets."""

    dataset: str = "SSP.460"
    target: str = "SOC_target"
    benchmark_folds: tuple[int, ...] = Field(default=(1, 2), min_length=1)
    incoming_folds: tuple[int, ...] = (3,)
    incoming_batch: Path | None = None

    @field_validator("benchmark_folds", "incoming_folds")
    @classmethod
    def _folds_in_range(cls, folds: tuple[int, ...]) -> tuple[int, ...]:
        bad = [f for f in folds if not 1 <= f <= 10]
        if bad:
            raise ValueError(f"LimeSoDa folds are 1..10, got {bad}")
        return folds


def format_validation_error(section: str, exc: ValidationError) -> str:
    """One line per problem, each naming the full key (e.g. ``train.pls.cv_folds``)."""
    lines = []
    for err in exc.errors():
        key = ".".join([section, *(str(p) for p in err["loc"])])
        lines.append(f"{key}: {err['msg']}" + (f" (got {err['input']!r})" if "input" in err else ""))
    return "; ".join(lines)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read params.yaml into a mapping, with file-naming errors."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    return raw


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
