"""The params.yaml keys the operator CLI reads (the library, the target, the model name), parsed into frozen models.

The trainer owns the full schema of each section; this reader takes only what soilci needs and
ignores the rest, so a key added for another stage never breaks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soil_contracts.errors import ContractError
from soil_contracts.library import LibrarySpec, registered_model_name
from soil_contracts.params import read_params_file
from soilci.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RegisterParams(_Section):
    """params.yaml ``register``."""

    model_name: str | None = Field(default=None, min_length=1)  # null: derived from prepare.target


class PrepareParams(_Section):
    """params.yaml ``prepare``: what the model predicts."""

    target: str = Field(min_length=1)
    unit: str = Field(min_length=1)


class Params(_Section):
    """The sections of params.yaml soilci reads."""

    library: LibrarySpec
    prepare: PrepareParams
    # ``register`` is pydantic's (ABCMeta's) own attribute name, so the section is read under an alias.
    registration: RegisterParams = Field(validation_alias="register")

    @property
    def model_name(self) -> str:
        """The registered model's name: ``register.model_name``, or derived from ``prepare.target``."""
        return registered_model_name(self.prepare.target, self.registration.model_name)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PARAMS) -> Self:
        """Read ``path``.

        Raises:
            ConfigError: missing or unreadable file, not YAML, or a bad key (named, e.g.
                ``register.model_name``).
        """
        path = Path(path)
        try:
            data = read_params_file(path)
        except ContractError as exc:
            hint = "; pass --params or --model-name" if not path.exists() else ""
            raise ConfigError(f"{exc}{hint}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: {key}: {first['msg']}") from exc


def _stage_sections() -> dict:
    """Every top-level section of params.yaml and the stage's own model that reads it (the full schemas)."""
    from soil_drift.config import DriftParams
    from soil_trainer import config as trainer

    return {"library": LibrarySpec, "prepare": trainer.PrepareParams, "drift": DriftParams,
            "train": trainer.TrainParams, "evaluate": trainer.EvaluateParams, "register": trainer.RegisterParams}


REQUIRED_SECTIONS = ("library", "prepare")  # the others default when absent, as each stage reads them


def validate_params_file(path: Path | str = DEFAULT_PARAMS) -> None:
    """Check all of params.yaml with each stage's own model before any stage runs.

    Each stage validates its section again when it runs; this finds a typo in ``train`` before
    ``prepare`` and ``drift`` spend their time. Unknown top-level sections are refused too: a stage
    would otherwise read its defaults in place of a misspelt section.

    Raises:
        ConfigError: missing or unreadable file, or every problem found, each by its key path
            (``train.pls.cv_fold: Extra inputs are not permitted``).
    """
    from difflib import get_close_matches

    path = Path(path)
    try:
        data = read_params_file(path)
    except ContractError as exc:
        raise ConfigError(str(exc)) from None
    sections = _stage_sections()
    problems: list[str] = []
    for name in data:
        if name not in sections:
            close = get_close_matches(str(name), list(sections), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (the sections are {', '.join(sections)})"
            problems.append(f"{name}: not a section any stage reads{hint}")
    for name, model in sections.items():
        raw = data.get(name)
        if raw is None and name in REQUIRED_SECTIONS:
            problems.append(f"{name}: section missing")
            continue
        if not isinstance(raw or {}, dict):
            problems.append(f"{name}: expected a mapping, got {type(raw).__name__}")
            continue
        try:
            model.model_validate(raw or {})
        except ValidationError as exc:
            for err in exc.errors():
                key = ".".join([name, *(str(p) for p in err["loc"])])
                got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
                problems.append(f"{key}: {err['msg']}{got}")
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s), nothing was run: " + "; ".join(problems))


def model_name(explicit: str | None, params: Path | str = DEFAULT_PARAMS) -> str:
    """``explicit`` (``--model-name``) if given, else the name params.yaml gives or derives."""
    return explicit or Params.load(params).model_name
