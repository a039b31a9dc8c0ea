"""Stage images, built once per content of their build inputs and reused by that key."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from pathlib import Path

from soilci.errors import ConfigError

_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def _copy_sources(dockerfile: Path) -> list[str]:
    """Paths the Dockerfile COPYs from the build context (not from other stages)."""
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.strip().split()
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources.extend(args[:-1])
    return sources


def _files_under(root: Path, pattern: str) -> list[Path]:
    matches = sorted(root.glob(pattern)) if any(c in pattern for c in "*?[") else [root / pattern]
    files: list[Path] = []
    for m in matches:
        if m.is_dir():
            files.extend(p for p in sorted(m.rglob("*")) if p.is_file())
        elif m.is_file():
            files.append(m)
    return [f for f in files if not (_IGNORED_PARTS & set(f.parts)) and not fnmatch.fnmatch(f.name, "*.py[co]")]


def input_digest(root: Path, service: str, base_image: str) -> str:
    """sha256 over the Dockerfile, every file it copies from the context, and the base image.

    Raises:
        ConfigError: the service has no Dockerfile.
    """
    dockerfile = root / "services" / service / "Dockerfile"
    if not dockerfile.exists():
        raise ConfigError(f"{dockerfile}: not found (stage image for soil-{service})")
    digest = hashlib.sha256()
    digest.update(f"base {base_image}\n".encode())
    for path in [dockerfile, *(f for src in _copy_sources(dockerfile) for f in _files_under(root, src))]:
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_image(client, root: Path, service: str, on_line: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """The stage image for the tree's current sources: reused if built before, else built (layer-cached).

    Returns (image reference, whether it was built now).
    """
    import docker.errors

    from soilci.images import build_image, image_name, resolve_base_image

    base = resolve_base_image(client)
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        base_id = base
    tag = "in-" + input_digest(root, service, base_id)[:16]
    ref = image_name(service, tag)
    try:
        client.images.get(ref)
        return ref, False
    except docker.errors.ImageNotFound:
        pass
    # VCS_REF = the input digest, so rebuilding the same sources from another commit hits the cache.
    build_image(service, tag=tag, root=root, client=client, buildargs={"VCS_REF": tag}, on_line=on_line)
    return ref, True
