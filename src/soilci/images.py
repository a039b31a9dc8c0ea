"""Build the service images with the Docker SDK, from a base image that works offline."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soil_contracts.git import git_revision
from soil_contracts.records import IMAGE_REFERENCE, IMAGE_TAG
from soilci.errors import BuildError, ConfigError, DockerUnavailable
from soilci.settings import LOCAL_BASE_IMAGE, OFFICIAL_BASE_IMAGE, get_settings

SERVICES = ("drift", "trainer", "model-api")


@dataclass(frozen=True)
class BuiltImage:
    service: str
    tag: str
    image_id: str


def docker_client():
    """A connected Docker client, or DockerUnavailable with what to do about it."""
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:  # docker raises DockerException, requests errors, FileNotFoundError
        raise DockerUnavailable(
            f"no Docker engine answers ({exc.__class__.__name__}); start dockerd or set DOCKER_HOST"
        ) from exc
    return client


def image_name(service: str, tag: str | None = None) -> str:
    """Local name of a service image, e.g. ``soil-drift:local``."""
    return f"soil-{service}:{tag or get_settings().image_tag}"


def resolve_base_image(client) -> str:
    """BASE_IMAGE (or SOILCI_BASE_IMAGE) if set; else the local debootstrap base if built; else official."""
    explicit = os.environ.get("BASE_IMAGE") or get_settings().base_image
    if explicit:
        return explicit
    import docker.errors

    try:
        client.images.get(LOCAL_BASE_IMAGE)
        return LOCAL_BASE_IMAGE
    except docker.errors.ImageNotFound:
        return OFFICIAL_BASE_IMAGE


def build_image(
    service: str,
    *,
    tag: str | None = None,
    root: Path | None = None,
    client=None,
    buildargs: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build ``services/<service>/Dockerfile`` with the repo root as context; layers are cached."""
    if service not in SERVICES:
        raise BuildError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    tag = tag or get_settings().image_tag
    if not IMAGE_TAG.fullmatch(tag):
        raise ConfigError(f"image tag {tag!r} (--tag or SOILCI_IMAGE_TAG) does not match {IMAGE_TAG.pattern}")
    root = Path(root or get_settings().repo_root)
    client = client or docker_client()
    name = image_name(service, tag)
    args = {"BASE_IMAGE": resolve_base_image(client), "VCS_REF": git_revision(root, env=False), **(buildargs or {})}
    for key, value in args.items():
        if not IMAGE_REFERENCE.fullmatch(value):
            raise ConfigError(f"build argument {key}={value!r} does not match {IMAGE_REFERENCE.pattern}")
    image_id = stream_build(
        client, name, on_line,
        path=str(root), dockerfile=f"services/{service}/Dockerfile", buildargs=args,
    )
    return BuiltImage(service=service, tag=name, image_id=image_id)


def stream_build(client, tag: str, on_line: Callable[[str], None] | None = None, **build_kwargs) -> str:
    """Run one build through the Docker API, streaming its lines; return the image id or raise BuildError."""
    image_id = None
    tail: list[str] = []
    for chunk in client.api.build(tag=tag, rm=True, forcerm=True, decode=True, **build_kwargs):
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message", chunk["error"])
            raise BuildError(f"{tag}: build failed: {detail.strip()}\n" + "".join(tail[-15:]))
        line = chunk.get("stream", "")
        if line:
            tail.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    return image_id or client.images.get(tag).id
