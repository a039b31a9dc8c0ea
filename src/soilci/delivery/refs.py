"""Image references: ``name[:tag][@digest]`` and the ``<gitrev>-v<version>`` tag publish-image gives."""

from __future__ import annotations

import re
from dataclasses import dataclass

from soil_contracts.records import IMAGE_TAG, REPOSITORY
from soilci.errors import ConfigError

# <gitrev>-v<model version>: the tag publish-image gives an image (gitrev may carry -dirty).
TAG_PATTERN = re.compile(r"^(?P<rev>[0-9a-f]{7,40}(?:-dirty)?)-v(?P<version>\d+)$")
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """``name[:tag][@digest]`` split as ``kustomize edit set image`` splits it."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Split ``ref``. Raises ConfigError for a bad digest or tag."""
        ref = ref.strip()
        digest = None
        if "@" in ref:
            ref, digest = ref.split("@", 1)
            if not DIGEST_PATTERN.match(digest):
                raise ConfigError(f"image digest {digest!r} is not sha256:<64 hex digits>")
        name, tag = ref, None
        if ":" in ref.rsplit("/", 1)[-1]:  # a colon before the last slash is a registry port
            name, tag = ref.rsplit(":", 1)
        if not REPOSITORY.fullmatch(name) or (tag is not None and not IMAGE_TAG.fullmatch(tag)):
            raise ConfigError(f"image reference {ref!r} is not <name>[:<tag>][@sha256:<digest>]")
        return cls(name=name, tag=tag, digest=digest)

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def image_tag(revision: str, model_version: str) -> str:
    """``<gitrev12>[-dirty]-v<version>``: which code and which model, readable in any registry UI."""
    dirty = revision.endswith("-dirty")
    rev = revision.removesuffix("-dirty")[:12]
    tag = f"{rev}{'-dirty' if dirty else ''}-v{model_version}"
    if not TAG_PATTERN.match(tag):
        raise ConfigError(f"git revision {revision!r} is not a hex commit id; pass --git-revision")
    return tag
