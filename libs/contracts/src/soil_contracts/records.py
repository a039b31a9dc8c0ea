"""Records that one command writes and another reads: pipeline runs, registrations, published images."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from soil_contracts._record import Record

# Strict shapes of the values that reach a Dockerfile, a manifest, a git ref or a shell: no quotes,
# whitespace or newlines can pass any of them.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MODEL_VERSION = re.compile(r"[0-9]{1,10}")
GIT_REVISION = re.compile(r"[0-9a-f]{7,40}(?:-dirty)?")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# host[:port]/path as docker spells a repository (lower case; components joined by . _ -).
REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*")
# Any image reference or id: name[:tag][@digest] characters only.
IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")


def check_pattern(field: str, value: str, pattern: re.Pattern[str]) -> str:
    """``value`` if it fully matches ``pattern``. Raises ValueError naming ``field`` and the value."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{field} {value!r} does not match {pattern.pattern}")
    return value


StageOutcome = Literal["up to date", "restored", "ran", "failed", "interrupted", "not run"]


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
    # The tree the run's results belong to, so a report never quotes another branch's or commit's run:
    # HEAD's SHA (None: no git), and a digest of the uncommitted changes to tracked files outside the
    # pipeline's outputs ("" when none; None: not recorded). soilci.revision.tree_state computes both.
    commit: str | None = None
    tree: str | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    pull: str | None = None
    exit_code: int | None = None
    stopped_at: str | None = None  # the stage (or pull, push, register) where a gate, crash or signal stopped it
    interrupted_by: str | None = None  # SIGINT or SIGTERM when a signal stopped the run (exit 130 or 143)
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

    @model_validator(mode="after")
    def _strict(self) -> ImageRecord:
        # After field validation, so a missing field is reported as missing first.
        for field, pattern in (
            ("repository", REPOSITORY), ("tag", IMAGE_TAG), ("digest", DIGEST), ("image_id", DIGEST),
            ("model_name", MODEL_NAME), ("model_version", MODEL_VERSION), ("git_revision", GIT_REVISION),
            ("service_image", IMAGE_REFERENCE),
        ):
            check_pattern(field, getattr(self, field), pattern)
        if self.image != f"{self.repository}:{self.tag}@{self.digest}":
            raise ValueError(f"image {self.image!r} is not repository:tag@digest of this record")
        return self
