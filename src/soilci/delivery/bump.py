"""soilci bump: pin the idle colour of the staging overlay to a pushed image, in the manifests repo."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soilci.delivery.gitops import (
    DEFAULT_OVERLAY,
    TAG_PATTERN,
    Checkout,
    ImageRef,
    PushResult,
    commit_and_push,
    other,
    placeholder,
)
from soilci.errors import ConfigError


@dataclass(frozen=True)
class BumpRequest:
    """An image pinned by digest and the model release it carries."""

    image: ImageRef
    model_name: str
    model_version: str
    git_revision: str


def bump_request(
    image: str,
    *,
    model_name: str = "soil-carbon",
    model_version: str | None = None,
    git_revision: str | None = None,
) -> BumpRequest:
    """Check ``image`` is pinned by digest; take model version and git revision from its tag if not given."""
    ref = ImageRef.parse(image)
    if not ref.digest:
        raise ConfigError(f"--image {image!r}: pin it by digest (REF@sha256:...), as publish-image prints it")
    match = TAG_PATTERN.match(ref.tag or "")
    model_version = model_version or (match["version"] if match else None)
    git_revision = git_revision or (match["rev"] if match else None)
    if not model_version or not git_revision:
        raise ConfigError(
            f"--image {image!r}: its tag is not <gitrev>-v<version>; pass --model-version and --git-revision"
        )
    if not str(model_version).isdigit():
        raise ConfigError(f"--model-version {model_version!r}: expected a registered version number")
    return BumpRequest(
        image=ref, model_name=model_name, model_version=str(model_version), git_revision=git_revision
    )


def request_from_json(path: Path) -> BumpRequest:
    """A BumpRequest from publish-image's ``--out`` file."""
    try:
        record = json.loads(Path(path).read_text())
        return bump_request(
            record["image"],
            model_name=record["model_name"],
            model_version=str(record["model_version"]),
            git_revision=record["git_revision"],
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a publish-image record ({exc.__class__.__name__}: {exc})") from exc


def commit_message(colour: str, req: BumpRequest) -> str:
    rev = req.git_revision[:12]
    return (
        f"staging: {colour} runs {req.model_name} v{req.model_version} "
        f"(git {rev}, {req.image.digest[:19]})\n\n"
        f"Idle colour {colour} (image {placeholder(colour)}) now pins:\n"
        f"  image:        {req.image}\n"
        f"  digest:       {req.image.digest}\n"
        f"  model:        {req.model_name} version {req.model_version}\n"
        f"  git revision: {req.git_revision}\n"
    )


def bump(
    manifests_repo: str,
    req: BumpRequest,
    *,
    branch: str | None = None,
    overlay: str = DEFAULT_OVERLAY,
    attempts: int = 5,
    before_push: Callable[[int], None] | None = None,
) -> PushResult:
    """Set the idle colour's image; no commit when either colour already runs it. ``detail``: that colour."""

    def change(checkout: Checkout):
        ov = checkout.overlay
        live = ov.live_colour()
        idle = other(live)
        # An image is pinned at most once: re-pinning it to the idle colour while live would lose the
        # rollback target, and re-pinning the idle colour is a rerun.
        for colour in (live, idle):
            if ov.release(colour).digest == req.image.digest:
                return None, colour
        ov.set_release(
            idle,
            req.image,
            model_name=req.model_name,
            model_version=req.model_version,
            git_revision=req.git_revision,
        )
        return commit_message(idle, req), idle

    return commit_and_push(
        manifests_repo, change, branch=branch, overlay=overlay, attempts=attempts, before_push=before_push
    )


def run(args) -> int:
    """``soilci bump``: prints the new commit (or that nothing changed)."""
    import sys

    if args.from_json:
        req = request_from_json(args.from_json)
    else:
        req = bump_request(
            args.image,
            model_name=args.model_name,
            model_version=args.model_version,
            git_revision=args.git_revision,
        )
    result = bump(args.manifests_repo, req, branch=args.branch, overlay=args.overlay)
    if result.commit is None:
        print(f"bump: {result.detail} already pins {req.image.digest}; nothing to commit", file=sys.stderr)
        return 0
    print(
        f"bump: {result.detail} now pins {req.model_name} v{req.model_version} ({req.image}); "
        f"pushed after {result.attempts} attempt(s)",
        file=sys.stderr,
    )
    print(result.commit)
    return 0
