"""soilci bump: pin the idle slot of the staging overlay to a pushed image, in the manifests repo."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soil_contracts.errors import ContractError
from soil_contracts.records import GIT_REVISION, MODEL_NAME, MODEL_VERSION, ImageRecord, check_pattern
from soilci import params
from soilci.delivery.manifests_repo import Checkout, PushResult, commit_and_push
from soilci.delivery.overlay import DEFAULT_OVERLAY, other, placeholder
from soilci.delivery.refs import TAG_PATTERN, ImageRef
from soilci.delivery.release import ReleaseAnnotations
from soilci.errors import ConfigError, GateRefused


@dataclass(frozen=True)
class BumpRequest:
    """An image pinned by digest and the model release it carries (every annotation set)."""

    image: ImageRef
    release: ReleaseAnnotations


def bump_request(
    image: str,
    *,
    model_name: str,
    model_version: str | None = None,
    git_revision: str | None = None,
) -> BumpRequest:
    """Check ``image`` is pinned by digest; take model version and git revision from its tag if not given.

    Raises:
        ConfigError (exit 2): no digest; no version or revision (neither given nor in the tag); a given
            ``--model-version`` or ``--git-revision`` that disagrees with the tag's (``<gitrev>-v<version>``),
            which would pin an image under another release's name.
    """
    ref = ImageRef.parse(image)
    if not ref.digest:
        raise ConfigError(f"--image {image!r}: pin it by digest (REF@sha256:...), as publish-image prints it")
    match = TAG_PATTERN.match(ref.tag or "")
    if match:
        _check_agrees_with_tag(ref.tag, match["version"], match["rev"], model_version, git_revision)
    model_version = model_version or (match["version"] if match else None)
    git_revision = git_revision or (match["rev"] if match else None)
    if not model_version or not git_revision:
        raise ConfigError(
            f"--image {image!r}: its tag is not <gitrev>-v<version>; pass --model-version and --git-revision"
        )
    for flag, value, pattern in (
        ("--model-name", model_name, MODEL_NAME),
        ("--model-version", str(model_version), MODEL_VERSION),
        ("--git-revision", git_revision, GIT_REVISION),
    ):
        try:
            check_pattern(flag, value, pattern)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    release = ReleaseAnnotations(
        model_name=model_name, model_version=str(model_version), git_revision=git_revision
    )
    return BumpRequest(image=ref, release=release)


def _check_agrees_with_tag(tag: str, tag_version: str, tag_rev: str, model_version: str | None,
                           git_revision: str | None) -> None:
    """Refuse a given version or revision that the image's own tag contradicts (versions compare as numbers,
    revisions by prefix: the tag carries a short commit id)."""
    if model_version is not None and str(model_version).strip().isdigit() and int(model_version) != int(tag_version):
        raise ConfigError(f"--model-version {model_version} disagrees with the image tag {tag!r}, which is "
                          f"version {tag_version}; bump the image that was built for version {model_version}, "
                          "or drop --model-version to take it from the tag")
    if git_revision is not None:
        given, tagged = git_revision.removesuffix("-dirty"), tag_rev.removesuffix("-dirty")
        if not (given.startswith(tagged) or tagged.startswith(given)) or (
                git_revision.endswith("-dirty") != tag_rev.endswith("-dirty")):
            raise ConfigError(f"--git-revision {git_revision} disagrees with the image tag {tag!r}, which was "
                              f"built from {tag_rev}; drop --git-revision to take it from the tag")


def request_from_record(path: Path) -> BumpRequest:
    """A BumpRequest from publish-image's ``--out`` file. Raises ContractError for a bad record."""
    record = ImageRecord.load(path)
    try:
        return bump_request(
            record.image,
            model_name=record.model_name,
            model_version=record.model_version,
            git_revision=record.git_revision,
        )
    except ConfigError as exc:
        raise ContractError(f"{path}: {exc}") from exc


def commit_message(slot: str, req: BumpRequest) -> str:
    rel = req.release
    return (
        f"staging: {slot} runs {rel.model_name} v{rel.model_version} "
        f"(git {rel.git_revision[:12]}, {req.image.digest[:19]})\n\n"
        f"Idle slot {slot} (image {placeholder(slot)}) now pins:\n"
        f"  image:        {req.image}\n"
        f"  digest:       {req.image.digest}\n"
        f"  model:        {rel.model_name} version {rel.model_version}\n"
        f"  git revision: {rel.git_revision}\n"
    )


def bump(
    manifests_repo: str,
    req: BumpRequest,
    *,
    branch: str | None = None,
    overlay: str = DEFAULT_OVERLAY,
    attempts: int = 5,
    before_push: Callable[[int], None] | None = None,
    allow_downgrade: bool = False,
) -> PushResult:
    """Set the idle slot's image; no commit when either slot already runs it. ``detail``: that slot.

    Raises:
        GateRefused: a slot already pins a newer version of the same model (a re-run of an older
            main run), unless ``allow_downgrade``.
    """

    def change(checkout: Checkout):
        ov = checkout.overlay
        live = ov.live_slot()
        idle = other(live)
        # An image is pinned at most once: re-pinning it to the idle slot while live would lose the
        # rollback target, and re-pinning the idle slot is a rerun.
        for slot in (live, idle):
            if ov.release(slot).digest == req.image.digest:
                return None, slot
        if not allow_downgrade:
            _refuse_downgrade([ov.release(idle), ov.release(live)], req)
        ov.set_release(idle, req.image, req.release)
        return commit_message(idle, req), idle

    return commit_and_push(
        manifests_repo, change, branch=branch, overlay=overlay, attempts=attempts, before_push=before_push
    )


def _refuse_downgrade(releases, req: BumpRequest) -> None:
    """Registry versions only grow: a slot holding a newer version of this model must not lose it."""
    wanted = int(req.release.model_version)
    for rel in releases:
        if rel.released and rel.model_name == req.release.model_name and int(rel.model_version) > wanted:
            raise GateRefused(
                f"{rel.slot} already pins {rel.model_name} v{rel.model_version}, newer than "
                f"v{wanted}; not bumping an older version (pass --allow-downgrade to force it)"
            )


def run(args) -> int:
    """``soilci bump``: prints the new commit (or that nothing changed)."""
    if args.from_json:
        req = request_from_record(args.from_json)
    else:
        req = bump_request(
            args.image,
            model_name=params.model_name(args.model_name, args.params),
            model_version=args.model_version,
            git_revision=args.git_revision,
        )
    result = bump(
        args.manifests_repo, req, branch=args.branch, overlay=args.overlay, allow_downgrade=args.allow_downgrade
    )
    if result.commit is None:
        print(f"bump: {result.detail} already pins {req.image.digest}; nothing to commit", file=sys.stderr)
        return 0
    print(
        f"bump: {result.detail} now pins {req.release.model_name} v{req.release.model_version} "
        f"({req.image}); pushed after {result.attempts} attempt(s)",
        file=sys.stderr,
    )
    print(result.commit)
    return 0
