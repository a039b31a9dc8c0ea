"""The ``drift`` section of params.yaml, parsed once into a frozen model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soil_contracts.errors import ContractError
from soil_contracts.params import read_params_file
from soil_drift.errors import ParamsError

SECTION = "drift"


class DriftParams(BaseModel):
    """How the gate decides; every key changes a verdict, so DVC reruns the stage when one changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.025, gt=0, le=0.5)
    on_drift: Literal["fail", "warn"] = "fail"
    n_components: int = Field(default=20, ge=1, le=200)
    min_rows: int = Field(default=20, ge=5)
    exclude_columns: tuple[str, ...] = ("sample_id",)
    key_column: str | None = None


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join([SECTION, *(str(p) for p in err["loc"])])
        lines.append(f"{key}: {err['msg']}" + (f" (got {err['input']!r})" if "input" in err else ""))
    return "; ".join(lines)


def load_params(path: Path | None) -> DriftParams:
    """Parse ``drift:`` from ``path``; a missing section means defaults, unknown keys are errors."""
    if path is None:
        return DriftParams()
    try:
        raw = read_params_file(path)
    except ContractError as exc:
        raise ParamsError(str(exc)) from None
    section = raw.get(SECTION)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ParamsError(f"{path}: {SECTION}: expected a mapping, got {type(section).__name__}")
    try:
        return DriftParams.model_validate(section)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {_format(exc)}") from exc
