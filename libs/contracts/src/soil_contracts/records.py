"""Records that one command writes and another reads: pipeline runs, registrations, published images."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soil_contracts._record import Record

StageOutcome = Literal["up to date", "restored", "ran", "failed", "not run"]


class StageRecord(Record):
    """One dvc.yaml stage within a pipeline run."""

    kind: str = "stage record"
    name: str
    outcome: StageOutcome = "not run"
    seconds: float | None = None
    exit_code: int | None = None
    log: str | None = None  # relative to the project root
    image: str | None = None


class RunRecord(Record):
    """``runs/<run_id>/run.json``: what one ``soilci pipeline`` run did, stage by stage."""

    kind: str = "pipeline run record"
    run_id: str
    mode: Literal["containers", "local"]
    started: str  # ISO 8601, UTC
    repo: str
    stages: list[StageRecord] = Field(default_factory=list)
    pull: str | None = None
    exit_code: int | None = None
    stopped_at: str | None = None
    seconds: float | None = None
    images: dict[str, str] = Field(default_factory=dict)


class RegisteredVersion(Record):
    """``soil-trainer register --out``: the registry version a main run created (read by publish-image)."""

    kind: str = "register record"
    name: str
    version: str
    alias: str
    uri: str
    run_id: str


class ImageRecord(Record):
    """``soilci publish-image --out`` (``image.json``): the pushed model-api image (read by bump)."""

    kind: str = "publish-image record"
    image: str  # repository:tag@sha256:digest
    repository: str
    tag: str
    digest: str
    image_id: str
    model_name: str
    model_version: str
    git_revision: str
    service_image: str
