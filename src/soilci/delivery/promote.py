"""soilci promote / rollback: switch the live Service between slots after checking the target slot."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from soil_contracts.files import write_text_atomic
from soilci.delivery.manifests_repo import Checkout, PushResult, commit_and_push
from soilci.delivery.overlay import (
    DEFAULT_OVERLAY,
    KUSTOMIZATION,
    LIVE_FILE,
    LIVE_SERVICE,
    RELEASE_FILE,
    StagingOverlay,
    load_yaml,
    other,
    service_selectors,
)
from soilci.delivery.release import Release
from soilci.errors import ConfigError, GateRefused, SoilCIError

PRODUCTION_ALIAS = "production"


@dataclass(frozen=True)
class Switch:
    """What a promotion or rollback did."""

    push: PushResult
    live: str
    previous: str
    release: Release
    alias: str | None


def check_slot(url: str, release: Release, *, timeout: float = 5.0) -> dict:
    """Refuse unless the slot behind ``url`` is ready and serves ``release``; returns its /v1/model."""
    slot = release.slot
    base = url.rstrip("/")
    if not release.released:
        raise GateRefused(
            f"{slot} has no release in the manifests (model version {release.model_version!r}, "
            f"digest {release.digest!r}); run soilci bump first"
        )
    try:
        ready = httpx.get(f"{base}/readyz", timeout=timeout)
    except httpx.HTTPError as exc:
        raise GateRefused(
            f"{slot} is not ready: GET {base}/readyz failed ({exc.__class__.__name__}: {exc})"
        ) from exc
    if ready.status_code != 200:
        raise GateRefused(
            f"{slot} is not ready: GET {base}/readyz answered {ready.status_code} "
            f"({ready.text[:200].strip()})"
        )
    try:
        resp = httpx.get(f"{base}/v1/model", timeout=timeout)
        resp.raise_for_status()
        served = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise GateRefused(f"{slot}: GET {base}/v1/model gave no model description ({exc})") from exc
    version = served.get("version")
    if str(version) != str(release.model_version):
        raise GateRefused(
            f"{slot} serves model version {version}, but the manifests pin "
            f"{release.model_name} v{release.model_version} for it; wait for Argo CD to sync or bump again"
        )
    if release.model_name and served.get("name") not in (None, release.model_name):
        raise GateRefused(
            f"{slot} serves model {served.get('name')!r}, the manifests pin {release.model_name!r}"
        )
    if served.get("slot") not in (None, slot):
        raise GateRefused(
            f"{url} answers as slot {served.get('slot')!r}, not {slot}; is it the preview Service?"
        )
    if release.tag and served.get("image_tag") not in (None, release.tag):
        raise GateRefused(
            f"{slot} runs image tag {served.get('image_tag')!r}, "
            f"the manifests pin {release.tag!r} ({release.image})"
        )
    return served


def _tracking_uri(explicit: str | None) -> str:
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError(
            "set MLFLOW_TRACKING_URI or pass --tracking-uri: promotion moves the production alias"
        )
    return uri


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _check_registered(tracking_uri: str, release: Release) -> None:
    try:
        _client(tracking_uri).get_model_version(release.model_name, str(release.model_version))
    except Exception as exc:  # MlflowException, connection errors
        raise GateRefused(
            f"{release.model_name} version {release.model_version} is not in the registry at {tracking_uri} "
            f"({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from exc


def _move_alias(tracking_uri: str, release: Release, pushed: PushResult) -> str:
    """Record the switch in the registry; git already holds it, so a failure here says how to finish."""
    try:
        _client(tracking_uri).set_registered_model_alias(
            release.model_name, PRODUCTION_ALIAS, str(release.model_version)
        )
    except Exception as exc:  # MlflowException, connection errors
        commit = pushed.commit[:12] if pushed.commit else "already in place"
        raise SoilCIError(
            f"live traffic switched to {release.slot} (commit {commit}), but moving "
            f"{release.model_name}@{PRODUCTION_ALIAS} to v{release.model_version} at {tracking_uri} failed "
            f"({exc.__class__.__name__}: {str(exc)[:200]}); set that alias by hand, do not promote again"
        ) from exc
    return f"{release.model_name}@{PRODUCTION_ALIAS} -> v{release.model_version}"


def promote(
    manifests_repo: str,
    *,
    preview_url: str,
    tracking_uri: str | None = None,
    expect_version: str | None = None,
    branch: str | None = None,
    overlay: str = DEFAULT_OVERLAY,
) -> Switch:
    """Make the preview slot live, after checking it is ready and serves what the manifests pin."""
    uri = _tracking_uri(tracking_uri)
    seen: dict = {}

    def change(checkout: Checkout):
        ov = checkout.overlay
        live = ov.live_slot()
        target = ov.release(other(live))
        if expect_version is not None and str(target.model_version) != str(expect_version):
            raise GateRefused(
                f"preview slot {target.slot} pins {target.model_name} v{target.model_version}, "
                f"not the expected v{expect_version}"
            )
        check_slot(preview_url, target)
        _check_registered(uri, target)
        ov.set_live(target.slot)
        seen.update(live=target.slot, previous=live, release=target)
        message = (
            f"staging: promote {target.slot} to live ({target.model_name} v{target.model_version})\n\n"
            f"Service {LIVE_SERVICE} now selects slot {target.slot}; {live} becomes the preview.\n"
            f"  image:        {target.image}\n"
            f"  git revision: {target.git_revision}\n"
        )
        return message, target.slot

    pushed = commit_and_push(manifests_repo, change, branch=branch, overlay=overlay)
    alias = _move_alias(uri, seen["release"], pushed)
    return Switch(
        push=pushed, live=seen["live"], previous=seen["previous"], release=seen["release"], alias=alias
    )


def _live_at(checkout: Checkout, revision: str) -> str | None:
    """The slot live.yaml made live at ``revision``, or None."""
    rel = f"{checkout.overlay_rel}/{LIVE_FILE}"
    text = checkout.show(revision, rel)
    if text is None:
        return None
    return service_selectors(load_yaml(text, f"{rel} at {revision[:12]}")).get(LIVE_SERVICE)


def _release_at(checkout: Checkout, revision: str, slot: str) -> Release | None:
    """A slot's release as the manifests pinned it at ``revision``."""
    rel = checkout.overlay_rel
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in (KUSTOMIZATION, LIVE_FILE, f"{slot}/{RELEASE_FILE}"):
            text = checkout.show(revision, f"{rel}/{name}")
            if text is None:
                return None
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return StagingOverlay(root).release(slot)


def rollback(
    manifests_repo: str,
    *,
    preview_url: str,
    tracking_uri: str | None = None,
    branch: str | None = None,
    overlay: str = DEFAULT_OVERLAY,
) -> Switch:
    """Restore live.yaml as it was before its last change, if the slot it names still runs what it ran."""
    uri = _tracking_uri(tracking_uri)
    seen: dict = {}

    def change(checkout: Checkout):
        ov = checkout.overlay
        live_rel = f"{checkout.overlay_rel}/{LIVE_FILE}"
        last = checkout.git("log", "-1", "--format=%H", "--", live_rel).stdout.strip()
        parent = (
            checkout.git("rev-parse", "-q", "--verify", f"{last}^", check=False).stdout.strip()
            if last
            else ""
        )
        if not parent:
            raise GateRefused(f"nothing to roll back: {live_rel} has no earlier version")
        live = ov.live_slot()
        before = _live_at(checkout, parent)
        if before != other(live):
            raise GateRefused(
                f"nothing to roll back: the last change to {live_rel} ({last[:12]}) did not switch slots "
                f"(live was {before}, is {live})"
            )
        then, now = _release_at(checkout, parent, before), ov.release(before)
        if then is None or (then.digest, then.model_version) != (now.digest, now.model_version):
            raise GateRefused(
                f"{before} was bumped since it was live (then {then.image if then else '?'} "
                f"v{then.model_version if then else '?'}, now {now.image} v{now.model_version}); "
                "rolling back would not restore what ran: promote deliberately instead"
            )
        check_slot(preview_url, now)
        _check_registered(uri, now)
        write_text_atomic(checkout.path / live_rel, checkout.show(parent, live_rel))
        seen.update(live=before, previous=live, release=now)
        message = (
            f"staging: roll back to {before} ({now.model_name} v{now.model_version})\n\n"
            f"Restores {LIVE_FILE} from {parent[:12]}, before {last[:12]}; {live} becomes the preview.\n"
            f"  image:        {now.image}\n"
        )
        return message, before

    pushed = commit_and_push(manifests_repo, change, branch=branch, overlay=overlay)
    alias = _move_alias(uri, seen["release"], pushed)
    return Switch(
        push=pushed, live=seen["live"], previous=seen["previous"], release=seen["release"], alias=alias
    )


def report(verb: str, switch: Switch) -> None:
    commit = switch.push.commit[:12] if switch.push.commit else "no commit (already so)"
    print(
        f"{verb}: {switch.live} is live ({switch.release.model_name} v{switch.release.model_version}, "
        f"{switch.release.image}); {switch.previous} is the preview",
        file=sys.stderr,
    )
    print(f"commit {commit}; {switch.alias}", file=sys.stderr)


def _run(verb: str, switch_to, args, **extra) -> int:
    """The CLI side of promote and rollback: one switch, then what it did on stderr."""
    switch = switch_to(args.manifests_repo, preview_url=args.preview_url, tracking_uri=args.tracking_uri,
                       branch=args.branch, overlay=args.overlay, **extra)
    report(verb, switch)
    return 0


def run_promote(args) -> int:
    return _run("promote", promote, args, expect_version=args.expect_version)


def run_rollback(args) -> int:
    return _run("rollback", rollback, args)
