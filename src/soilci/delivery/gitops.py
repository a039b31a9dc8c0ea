"""The manifests repo: a clone, the staging overlay's two colours, and commits that survive racing pushes."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml
from ruamel.yaml import YAML

from soilci.errors import ConfigError, SoilCIError

COLOURS = ("blue", "green")
DEFAULT_OVERLAY = "deploy/kustomize/overlays/staging"
LIVE_FILE = "live.yaml"
RELEASE_FILE = "release.yaml"
LIVE_SERVICE = "model-api"
PREVIEW_SERVICE = "model-api-preview"
UNRELEASED = "none"
ANNOTATION = "soilci.io/"

# <gitrev>-v<model version>: the tag publish-image gives an image (gitrev may carry -dirty).
TAG_PATTERN = re.compile(r"^(?P<rev>[0-9a-f]{7,40}(?:-dirty)?)-v(?P<version>\d+)$")
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


class GitError(SoilCIError):
    """A git command against the manifests repo failed."""


def other(colour: str) -> str:
    """The colour that is not ``colour``."""
    return COLOURS[1 - COLOURS.index(colour)]


def placeholder(colour: str) -> str:
    """The image name the colour's Deployment carries until ``images:`` replaces it."""
    return f"model-api-{colour}"


def redact(url: str) -> str:
    """``url`` without user or token, for messages and logs."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


@dataclass(frozen=True)
class ImageRef:
    """``name[:tag][@digest]`` split as ``kustomize edit set image`` splits it."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        ref = ref.strip()
        digest = None
        if "@" in ref:
            ref, digest = ref.split("@", 1)
            if not DIGEST_PATTERN.match(digest):
                raise ConfigError(f"image digest {digest!r} is not sha256:<64 hex digits>")
        name, tag = ref, None
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = ref.rsplit(":", 1)
        if not name or (tag is not None and not re.fullmatch(r"[\w][\w.-]{0,127}", tag)):
            raise ConfigError(f"image reference {ref!r} is not <name>[:<tag>][@sha256:<digest>]")
        return cls(name=name, tag=tag, digest=digest)

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Release:
    """What one colour runs, as the manifests pin it."""

    colour: str
    image: str | None
    digest: str | None
    tag: str | None
    model_name: str | None
    model_version: str | None
    git_revision: str | None

    @property
    def released(self) -> bool:
        return bool(self.digest) and self.model_version not in (None, UNRELEASED)

    def as_dict(self) -> dict:
        return asdict(self)


def _yaml() -> YAML:
    """A round-trip YAML that keeps comments, quotes and this repo's indentation."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


def _dump(rt: YAML, docs: list, path: Path) -> None:
    buf = io.StringIO()
    if len(docs) == 1:
        rt.dump(docs[0], buf)
    else:
        rt.dump_all(docs, buf)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, path)


class StagingOverlay:
    """The staging overlay of a manifests checkout: which colour is live, what each colour runs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not (self.root / "kustomization.yaml").is_file():
            raise ConfigError(f"{self.root}: no kustomization.yaml (is --overlay right?)")

    # -- live colour -------------------------------------------------------------------------
    def _live_docs(self) -> tuple[YAML, list]:
        path = self.root / LIVE_FILE
        if not path.is_file():
            raise ConfigError(f"{path}: missing; it holds the live Service's selector")
        rt = _yaml()
        return rt, list(rt.load_all(path.read_text()))

    def selectors(self) -> dict[str, str]:
        """``{service name: slot}`` as live.yaml sets them."""
        _, docs = self._live_docs()
        found = {}
        for doc in docs:
            if not doc:
                continue
            name = doc.get("metadata", {}).get("name")
            slot = (doc.get("spec") or {}).get("selector", {}).get("slot")
            found[name] = slot
        path = self.root / LIVE_FILE
        for service in (LIVE_SERVICE, PREVIEW_SERVICE):
            if found.get(service) not in COLOURS:
                raise ConfigError(
                    f"{path}: Service {service} must select slot blue or green, got {found.get(service)!r}"
                )
        if found[LIVE_SERVICE] == found[PREVIEW_SERVICE]:
            raise ConfigError(
                f"{path}: {LIVE_SERVICE} and {PREVIEW_SERVICE} both select {found[LIVE_SERVICE]}"
            )
        return found

    def live_colour(self) -> str:
        return self.selectors()[LIVE_SERVICE]

    def set_live(self, colour: str) -> None:
        """Point the live Service at ``colour`` and the preview Service at the other one."""
        if colour not in COLOURS:
            raise ConfigError(f"unknown colour {colour!r}; expected blue or green")
        rt, docs = self._live_docs()
        wanted = {LIVE_SERVICE: colour, PREVIEW_SERVICE: other(colour)}
        for doc in docs:
            name = doc.get("metadata", {}).get("name") if doc else None
            if name in wanted:
                doc["spec"]["selector"]["slot"] = wanted[name]
        _dump(rt, docs, self.root / LIVE_FILE)

    # -- releases ----------------------------------------------------------------------------
    def _kustomization(self) -> tuple[YAML, dict]:
        rt = _yaml()
        return rt, rt.load((self.root / "kustomization.yaml").read_text())

    def _image_entry(self, kust: dict, colour: str) -> dict | None:
        for entry in kust.get("images") or []:
            if entry.get("name") == placeholder(colour):
                return entry
        return None

    def release(self, colour: str) -> Release:
        """The image and model version the manifests pin for ``colour``."""
        _, kust = self._kustomization()
        entry = self._image_entry(kust, colour) or {}
        image = None
        if entry.get("newName"):
            image = str(ImageRef(entry["newName"], entry.get("newTag"), entry.get("digest")))
        notes = self._release_annotations(colour)
        return Release(
            colour=colour,
            image=image,
            digest=entry.get("digest"),
            tag=entry.get("newTag"),
            model_name=notes.get("model-name"),
            model_version=notes.get("model-version"),
            git_revision=notes.get("git-revision"),
        )

    def _release_annotations(self, colour: str) -> dict[str, str]:
        path = self.root / colour / RELEASE_FILE
        if not path.is_file():
            return {}
        doc = yaml.safe_load(path.read_text()) or {}
        notes = (doc.get("metadata") or {}).get("annotations") or {}
        return {k.removeprefix(ANNOTATION): str(v) for k, v in notes.items() if k.startswith(ANNOTATION)}

    def set_release(
        self, colour: str, image: ImageRef, *, model_name: str, model_version: str, git_revision: str
    ) -> None:
        """Pin ``colour`` to ``image`` (as ``kustomize edit set image``) and record its model version."""
        rt, kust = self._kustomization()
        images = kust.get("images")
        if images is None:
            kust["images"] = images = []
        entry = self._image_entry(kust, colour)
        if entry is None:
            entry = {"name": placeholder(colour)}
            images.append(entry)
            images.sort(key=lambda e: e.get("name", ""))
            entry = self._image_entry(kust, colour)
        # kustomize edit set image NAME=REF replaces the entry: fields the new ref lacks are dropped.
        entry["newName"] = image.name
        for key, value in (("newTag", image.tag), ("digest", image.digest)):
            if value:
                entry[key] = value
            elif key in entry:
                del entry[key]
        _dump(rt, [kust], self.root / "kustomization.yaml")
        release = self.root / colour / RELEASE_FILE
        release.write_text(
            f"# What the {colour} colour runs; soilci bump rewrites this file when it sets "
            f"{placeholder(colour)} in ../kustomization.yaml.\n"
            "apiVersion: apps/v1\n"
            "kind: Deployment\n"
            "metadata:\n"
            "  name: model-api\n"
            "  annotations:\n"
            f"    soilci.io/model-name: {model_name}\n"
            f'    soilci.io/model-version: "{model_version}"\n'
            f'    soilci.io/git-revision: "{git_revision}"\n'
        )

    # -- rendering ---------------------------------------------------------------------------
    def render(self) -> list[dict]:
        """The objects Argo CD would apply: the overlay built by kustomize."""
        return render(self.root)


def kustomize_command(path: Path) -> list[str]:
    """``kustomize build`` if installed, else ``kubectl kustomize`` (which embeds kustomize)."""
    explicit = os.environ.get("SOILCI_KUSTOMIZE")
    if explicit:
        return [*explicit.split(), str(path)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(path)]
    raise ConfigError("neither kustomize nor kubectl is on PATH; install one to render the overlay")


def render(path: Path) -> list[dict]:
    """Render a kustomization directory into its objects."""
    proc = subprocess.run(kustomize_command(path), check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(f"{path}: kustomize failed: {proc.stderr.strip()[-2000:]}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


# -- git ---------------------------------------------------------------------------------------


def _identity() -> list[str]:
    """Author flags: the caller's git identity if it has one, else a soilci bot identity."""

    def configured(key: str) -> str:
        proc = subprocess.run(["git", "config", "--get", key], check=False, capture_output=True, text=True)
        return proc.stdout.strip()

    name = os.environ.get("GIT_AUTHOR_NAME") or configured("user.name") or "soilci"
    email = os.environ.get("GIT_AUTHOR_EMAIL") or configured("user.email") or "soilci@localhost"
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


@dataclass
class Checkout:
    """A temporary clone of the manifests repo."""

    url: str
    path: Path
    branch: str
    overlay_rel: str

    @property
    def overlay(self) -> StagingOverlay:
        return StagingOverlay(self.path / self.overlay_rel)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args], check=False, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} in {redact(self.url)} failed: {_clean(proc.stderr, self.url)}")
        return proc

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def show(self, revision: str, rel: str) -> str | None:
        """A file's text at ``revision``, or None when it did not exist there."""
        proc = self.git("show", f"{revision}:{rel}", check=False)
        return proc.stdout if proc.returncode == 0 else None


def _clean(stderr: str, url: str) -> str:
    text = stderr.strip().replace(url, redact(url))
    return text[-1500:] or "(no output)"


@contextmanager
def clone(url: str, *, branch: str | None = None, overlay: str = DEFAULT_OVERLAY) -> Iterator[Checkout]:
    """Clone ``url`` into a temp dir for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="soilci-manifests-") as tmp:
        path = Path(tmp) / "repo"
        cmd = ["git", "clone", "--quiet", "--no-tags"]
        if branch:
            cmd += ["--branch", branch]
        proc = subprocess.run([*cmd, url, str(path)], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise GitError(f"cannot clone manifests repo {redact(url)}: {_clean(proc.stderr, url)}")
        checkout = Checkout(url=url, path=path, branch=branch or "", overlay_rel=overlay)
        if checkout.git("rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
            raise GitError(f"manifests repo {redact(url)} has no commits; push deploy/kustomize to it first")
        if not checkout.branch:
            checkout.branch = checkout.git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        if not (path / overlay / "kustomization.yaml").is_file():
            raise ConfigError(f"manifests repo {redact(url)} has no {overlay}/kustomization.yaml")
        yield checkout


@dataclass(frozen=True)
class PushResult:
    """Outcome of one change to the manifests repo."""

    commit: str | None  # None: nothing changed, nothing committed
    attempts: int
    message: str | None
    detail: object = None  # what the change function returned besides its message


# A push lost a race (someone else pushed first) rather than failed for good.
_RACE_MARKERS = (
    "non-fast-forward",
    "fetch first",
    "rejected",
    "cannot lock ref",
    "failed to update ref",
    "stale info",
)


def commit_and_push(
    url: str,
    change: Callable[[Checkout], tuple[str | None, object]],
    *,
    branch: str | None = None,
    overlay: str = DEFAULT_OVERLAY,
    attempts: int = 5,
    before_push: Callable[[int], None] | None = None,
) -> PushResult:
    """Apply ``change`` to a fresh clone, commit and push; on a lost race, replay it on the new tip.

    ``change`` returns ``(commit message, detail)``; a None message means there is nothing to do. It is
    called again after every lost race, on the tip that won, so it must decide from the files it
    sees (which colour is idle, what is live), never from what an earlier attempt saw.
    """
    with clone(url, branch=branch, overlay=overlay) as checkout:
        for attempt in range(1, attempts + 1):
            outcome = change(checkout)
            checkout.git("add", "-A", "--", overlay)
            staged = checkout.git("diff", "--cached", "--quiet", check=False).returncode != 0
            message, detail = outcome if outcome else (None, None)
            if message is None or not staged:
                checkout.git("reset", "--hard", "--quiet")
                return PushResult(commit=None, attempts=attempt, message=None, detail=detail)
            checkout.git(*_identity(), "commit", "--quiet", "-m", message)
            if before_push:
                before_push(attempt)
            proc = checkout.git(
                "push", "--quiet", "origin", f"HEAD:refs/heads/{checkout.branch}", check=False
            )
            if proc.returncode == 0:
                return PushResult(commit=checkout.head(), attempts=attempt, message=message, detail=detail)
            if not any(marker in proc.stderr for marker in _RACE_MARKERS):
                raise GitError(f"git push to {redact(url)} failed: {_clean(proc.stderr, url)}")
            # Someone pushed first: take their tip and redo the change on it (a rebase by replay,
            # which re-reads the idle colour instead of re-applying a stale text diff).
            checkout.git("fetch", "--quiet", "origin", checkout.branch)
            checkout.git("reset", "--hard", "--quiet", f"origin/{checkout.branch}")
        raise GitError(f"gave up pushing to {redact(url)} after {attempts} lost races; try again")


# -- status ------------------------------------------------------------------------------------


def status(url: str, *, branch: str | None = None, overlay: str = DEFAULT_OVERLAY) -> dict:
    """Which colour is live, what each colour runs, and what Argo CD will sync (rendered objects)."""
    with clone(url, branch=branch, overlay=overlay) as checkout:
        ov = checkout.overlay
        live = ov.live_colour()
        colours = {}
        for colour in COLOURS:
            rel = ov.release(colour).as_dict()
            rel["role"] = "live" if colour == live else "preview"
            colours[colour] = rel
        objects = [
            {
                "kind": o.get("kind"),
                "name": o.get("metadata", {}).get("name"),
                "namespace": o.get("metadata", {}).get("namespace"),
            }
            for o in ov.render()
        ]
        subject = checkout.git("log", "-1", "--format=%s").stdout.strip()
        return {
            "manifests_repo": redact(url),
            "branch": checkout.branch,
            "revision": checkout.head(),
            "subject": subject,
            "overlay": overlay,
            "live": live,
            "preview": other(live),
            "colours": colours,
            "objects": objects,
        }


def format_status(report: dict) -> str:
    """A plain-text table of ``status``'s report."""
    lines = [
        (
            f"manifests  {report['manifests_repo']} "
            f"({report['branch']} @ {report['revision'][:12]}: {report['subject']})"
        ),
        f"overlay    {report['overlay']}",
        "",
        f"{'colour':<7} {'role':<8} {'model':<18} {'git revision':<14} image",
    ]
    for colour in COLOURS:
        rel = report["colours"][colour]
        model = (
            f"{rel['model_name'] or '-'} v{rel['model_version']}"
            if rel["model_version"] not in (None, UNRELEASED)
            else "(none)"
        )
        rev = (rel["git_revision"] or "-")[:12]
        lines.append(f"{colour:<7} {rel['role']:<8} {model:<18} {rev:<14} {rel['image'] or '-'}")
    lines += ["", f"Argo CD syncs {len(report['objects'])} objects:"]
    lines += [
        f"  {o['kind']:<22} {(o['namespace'] + '/') if o['namespace'] else ''}{o['name']}"
        for o in report["objects"]
    ]
    return "\n".join(lines)


def run(args) -> int:
    """``soilci status``: a table, or JSON with ``--json``."""
    import json

    report = status(args.manifests_repo, branch=args.branch, overlay=args.overlay)
    print(json.dumps(report, indent=2) if args.json else format_status(report))
    return 0
