"""Where the service runs and where its model comes from: environment variables only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from soil_contracts.errors import ContractError
from soil_contracts.records import RegisteredVersion
from soil_model_api.errors import ConfigError

# models:/<name>@<alias> or models:/<name>/<version>: the registry forms the service accepts.
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
SOURCE_VARIABLES = ("MODEL_URI", "MODEL_DIR", "MODEL_API_REGISTERED_FILE")


@dataclass(frozen=True)
class RegistrySource:
    """A registry version to serve: by alias or version (``MODEL_URI``), or pinned by a register record."""

    name: str
    alias: str | None
    version: str | None
    origin: str  # what named it, for messages: "MODEL_URI" or "MODEL_API_REGISTERED_FILE <path>"
    run_id: str | None = None  # the run a register record says created the version

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    @classmethod
    def from_uri(cls, uri: str) -> RegistrySource:
        match = REGISTRY_URI.match(uri)
        if match is None:
            raise ConfigError(f"MODEL_URI: {uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
        return cls(name=match["name"], alias=match["alias"], version=match["version"], origin="MODEL_URI")

    @classmethod
    def from_record(cls, path: Path) -> RegistrySource:
        """The version ``soil-trainer register --out`` wrote, pinned; ConfigError names the file and field."""
        try:
            record = RegisteredVersion.load(path)
        except ContractError as exc:
            raise ConfigError(f"MODEL_API_REGISTERED_FILE: {exc}") from exc
        what = f"MODEL_API_REGISTERED_FILE: {path}: {RegisteredVersion.model_fields['kind'].default}"
        pinned = f"models:/{record.name}/{record.version}"
        if not re.fullmatch(r"[^/@\s]+", record.name):
            raise ConfigError(f"{what}: name: {record.name!r} is not a registered model name")
        if not record.version.isdigit():
            raise ConfigError(f"{what}: version: {record.version!r} is not a registry version number")
        if record.uri != pinned:
            raise ConfigError(f"{what}: uri: {record.uri!r} is not {pinned}, the version the record names")
        return cls(name=record.name, alias=None, version=record.version,
                   origin=f"MODEL_API_REGISTERED_FILE {path}", run_id=record.run_id)


class Settings(BaseSettings):
    """``MODEL_API_*`` for the service itself; ``MODEL_URI``/``MODEL_DIR`` and ``MLFLOW_*`` as they are."""

    model_config = SettingsConfigDict(env_prefix="MODEL_API_", extra="ignore", frozen=True)

    model_uri: str | None = Field(default=None, validation_alias=AliasChoices("MODEL_URI"))
    model_dir: Path | None = Field(default=None, validation_alias=AliasChoices("MODEL_DIR"))
    # A soil-trainer register record (name, version, ...): serve that version, pinned, from the registry.
    registered_file: Path | None = None
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI"))

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    slot: str | None = None  # blue | green, set by the Deployment
    image_tag: str | None = None
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    # None: derived from max_batch x the model's bands (validation.body_limit; 17.5 MiB for 1000 x 430).
    max_body_bytes: int | None = Field(default=None, ge=1024)
    # Request bodies above 32 kB held at once, as whole slots of the body limit; the rest wait.
    body_memory_bytes: int = Field(default=96 * 1024 * 1024, ge=1024 * 1024)
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # to receive a body (and to wait for a slot)
    head_timeout_seconds: float = Field(default=10.0, gt=0)  # to receive a request line and headers
    max_head_bytes: int = Field(default=16 * 1024, ge=1024)  # h11's default; httptools has no limit
    keep_alive_seconds: int = Field(default=5, ge=1)  # uvicorn's timeout_keep_alive
    # Open connections plus running requests; above it uvicorn answers 503 (bounds small bodies in flight).
    limit_concurrency: int = Field(default=1024, ge=16)
    cache_dir: Path | None = None  # where registry versions are downloaded (default: the temp dir)
    load_retry_max_seconds: float = Field(default=30.0, gt=0)
    # BLAS threads for predictions; 0 keeps the library default. One is fastest here: requests are
    # small, and spare BLAS threads spin on the cores the event loop needs.
    blas_threads: int = Field(default=1, ge=0, le=64)
    access_log: bool = False
    # Live drift (live_drift.py): the last DRIFT_WINDOW spectra (rows x bands float32, never written to
    # disk) against the model's calibration sample, by the drift gate's method, every
    # DRIFT_INTERVAL_SECONDS (0: only on GET /v1/drift) and on request.
    drift_window: int = Field(default=200, ge=5, le=20_000)
    drift_min_rows: int = Field(default=20, ge=5)  # the gate's drift.min_rows: fewer is "insufficient_data"
    drift_interval_seconds: float = Field(default=300.0, ge=0)
    drift_alpha: float = Field(default=0.025, gt=0, le=0.5)  # the gate's drift.alpha (family-wise, Holm)
    log_level: str = "info"

    @field_validator("model_uri", "model_dir", "registered_file", "mlflow_tracking_uri", "slot", "image_tag",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # Kubernetes and compose set "" to clear a variable an image defines.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("model_uri")
    @classmethod
    def _registry_form(cls, value: str | None) -> str | None:
        if value is not None and not REGISTRY_URI.match(value):
            raise ValueError(
                "expected models:/<name>@<alias> or models:/<name>/<version>, "
                "e.g. models:/soil-soc@staging; use MODEL_DIR for a directory"
            )
        return value

    def model_source(self) -> Path | RegistrySource:
        """The one configured model source, or a ConfigError naming the variables (or the record's field)."""
        given = dict(zip(SOURCE_VARIABLES, (self.model_uri, self.model_dir, self.registered_file), strict=True))
        given = {var: value for var, value in given.items() if value is not None}
        if len(given) > 1:
            named = [f"{var} ({value})" for var, value in given.items()]
            listed = " and ".join(named) if len(named) == 2 else f"{', '.join(named[:-1])} and {named[-1]}"
            raise ConfigError(f"{listed} are {'both' if len(named) == 2 else 'all'} set; "
                              f"set one of {', '.join(SOURCE_VARIABLES)}")
        if self.model_uri:
            return RegistrySource.from_uri(self.model_uri)
        if self.model_dir:
            return Path(self.model_dir)
        if self.registered_file:
            return RegistrySource.from_record(Path(self.registered_file))
        raise ConfigError("set MODEL_URI (models:/<name>@<alias> or models:/<name>/<version>), "
                          "MODEL_DIR (a model directory) or MODEL_API_REGISTERED_FILE "
                          "(the record `soil-trainer register --out` writes)")


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, parsed once; ConfigError names the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            # Aliased fields (MODEL_URI, ...) are reported by their variable name already.
            var = field if field.isupper() else f"MODEL_API_{field.upper()}"
            problems.append(f"{var}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from exc
