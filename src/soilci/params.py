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


def model_name(explicit: str | None, params: Path | str = DEFAULT_PARAMS) -> str:
    """``explicit`` (``--model-name``) if given, else the name params.yaml gives or derives."""
    return explicit or Params.load(params).model_name
