"""What a slot runs: the model annotations of ``<slot>/release.yaml`` and the image the overlay pins."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from soil_contracts.records import GIT_REVISION, MODEL_NAME, MODEL_VERSION, check_pattern
from soilci.errors import ConfigError

ANNOTATION_PREFIX = "soilci.io/"
UNRELEASED = "none"  # model version and git revision of a slot nothing was released to


class ReleaseAnnotations(BaseModel):
    """The model a slot's Deployment carries, as ``soilci.io/<field with dashes>`` annotations.

    A field is None when its annotation is absent; other ``soilci.io/`` annotations are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_name: str | None = None
    model_version: str | None = None
    git_revision: str | None = None

    @field_validator("model_name", "model_version", "git_revision")
    @classmethod
    def _strict(cls, value: str | None, info) -> str | None:
        # Values are pasted into release.yaml: a quote or newline must never reach it.
        if value is None or (value == UNRELEASED and info.field_name != "model_name"):
            return value
        pattern = {"model_name": MODEL_NAME, "model_version": MODEL_VERSION, "git_revision": GIT_REVISION}
        return check_pattern(info.field_name, value, pattern[info.field_name])

    @staticmethod
    def key(field: str) -> str:
        """The annotation key of ``field`` (``model_version`` -> ``soilci.io/model-version``)."""
        return ANNOTATION_PREFIX + field.replace("_", "-")

    def to_annotations(self) -> dict[str, str]:
        """``{annotation key: value}`` for every field that is set, in field order."""
        return {self.key(name): value for name, value in self if value is not None}

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, object], *, where: str) -> ReleaseAnnotations:
        """Read the ``soilci.io/`` keys of a Deployment's annotations. Raises ConfigError naming ``where``."""
        fields = {
            key.removeprefix(ANNOTATION_PREFIX).replace("-", "_"): value
            for key, value in annotations.items()
            if str(key).startswith(ANNOTATION_PREFIX)
        }
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{where}: annotation {cls.key(str(first['loc'][0]))}: {first['msg']}") from exc

    def release_file(self, slot: str, placeholder: str) -> str:
        """The text of ``<slot>/release.yaml``: a patch that puts these annotations on the Deployment."""
        lines = [
            (
                f"# What the {slot} slot runs; soilci bump rewrites this file when it sets "
                f"{placeholder} in ../kustomization.yaml."
            ),
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            "  name: model-api",
            "  annotations:",
            # JSON strings are YAML double-quoted scalars: versions stay strings, names stay intact.
            *(f"    {key}: {json.dumps(value)}" for key, value in self.to_annotations().items()),
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Release:
    """What one slot runs, as the manifests pin it."""

    slot: str
    image: str | None  # name[:tag]@digest
    digest: str | None
    tag: str | None
    model_name: str | None
    model_version: str | None
    git_revision: str | None

    @property
    def released(self) -> bool:
        """Whether the slot pins a digest and a model version (not the seed's ``none``)."""
        return bool(self.digest) and self.model_version not in (None, UNRELEASED)

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)
