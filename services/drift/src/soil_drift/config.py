"""The ``drift`` section of params.yaml, parsed once into a frozen model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from soil_contracts.errors import ContractError
from soil_contracts.params import read_params_file
from soil_drift.errors import ParamsError

SECTION = "drift"
# The family-wise false-positive rate the gate accepts. Below 1e-4 (one honest PR in 10,000 failing)
# the gate is all but blind (every Holm threshold below 1e-4 / n_tests), and such a number is a typo
# more often than a decision; above 0.5 it fails honest PRs more often than not.
ALPHA_MIN, ALPHA_MAX = 1e-4, 0.5
ALPHA_RANGE = (f"must be between {ALPHA_MIN:g} and {ALPHA_MAX:g}: the gate's family-wise false-positive rate "
               "(services/drift/README.md, Params)")


class DriftParams(BaseModel):
    """How the gate decides; every key changes a verdict, so DVC reruns the stage when one changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = 0.025  # ALPHA_MIN..ALPHA_MAX
    on_drift: Literal["fail", "warn"] = "fail"
    n_components: int = Field(default=20, ge=1, le=200)
    min_rows: int = Field(default=20, ge=5)
    exclude_columns: tuple[str, ...] = ("sample_id",)
    key_column: str | None = None

    @field_validator("alpha")
    @classmethod
    def _alpha_in_range(cls, value: float) -> float:
        if not ALPHA_MIN <= value <= ALPHA_MAX:  # NaN fails too
            raise PydanticCustomError("alpha_range", ALPHA_RANGE)
        return value


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
