"""Where the service runs and where its model comes from: environment variables only."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from soil_model_api.errors import ConfigError

# models:/<name>@<alias> or models:/<name>/<version>: the registry forms the service accepts.
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


class Settings(BaseSettings):
    """``MODEL_API_*`` for the service itself; ``MODEL_URI``/``MODEL_DIR`` and ``MLFLOW_*`` as they are."""

    model_config = SettingsConfigDict(env_prefix="MODEL_API_", extra="ignore", frozen=True)

    model_uri: str | None = Field(default=None, validation_alias=AliasChoices("MODEL_URI"))
    model_dir: Path | None = Field(default=None, validation_alias=AliasChoices("MODEL_DIR"))
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI"))

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    slot: str | None = None  # blue | green, set by the Deployment
    image_tag: str | None = None
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    cache_dir: Path | None = None  # where registry versions are downloaded (default: the temp dir)
    load_retry_max_seconds: float = Field(default=30.0, gt=0)
    # BLAS threads for predictions; 0 keeps the library default. One is fastest here: requests are
    # small, and spare BLAS threads spin on the cores the event loop needs.
    blas_threads: int = Field(default=1, ge=0, le=64)
    access_log: bool = False
    log_level: str = "info"

    @field_validator("model_uri", "model_dir", "mlflow_tracking_uri", "slot", "image_tag", mode="before")
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
                "e.g. models:/soil-carbon@staging; use MODEL_DIR for a directory"
            )
        return value

    def model_source(self) -> str:
        """The one configured model source, or a ConfigError naming the variables."""
        if self.model_uri and self.model_dir:
            raise ConfigError(f"MODEL_URI ({self.model_uri}) and MODEL_DIR ({self.model_dir}) are both set; set one")
        if not (self.model_uri or self.model_dir):
            raise ConfigError("set MODEL_URI (models:/soil-carbon@staging) or MODEL_DIR (a model directory)")
        return self.model_uri or str(self.model_dir)


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
