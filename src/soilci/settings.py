"""Where things run (env vars with the SOILCI_ prefix); what a model is stays in params.yaml."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

OFFICIAL_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_IMAGE = "soilci-base:bookworm"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOILCI_", extra="ignore")

    base_image: str | None = None  # also read from plain BASE_IMAGE, see resolve_base_image
    image_tag: str = "local"
    repo_root: Path = Path(__file__).resolve().parents[2]


@lru_cache
def get_settings() -> Settings:
    return Settings()
