"""The manifests repo: a temporary clone, and commits that survive racing pushes."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from soil_contracts.redact import redact_url
from soilci.delivery.overlay import DEFAULT_OVERLAY, KUSTOMIZATION, StagingOverlay
from soilci.errors import ConfigError, SoilCIError

# A push lost a race (someone else pushed first) rather than failed for good.
_RACE_MARKERS = (
    "non-fast-forward",
    "fetch first",
    "cannot lock ref",
    "failed to update ref",
    "stale info",
)
# The remote refused on purpose (a pre-receive/update hook, branch protection): never a race.
_REFUSAL_MARKERS = ("hook declined", "protected branch", "denied")
# A branch name that git accepts and no shell or ref syntax can be smuggled through.
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


class GitError(SoilCIError):
    """A git command against the manifests repo failed."""


def _identity() -> list[str]:
    """Author flags: the caller's git identity if it has one, else a soilci bot identity."""

    def configured(key: str) -> str:
        proc = subprocess.run(["git", "config", "--get", key], check=False, capture_output=True, text=True)
        return proc.stdout.strip()

    name = os.environ.get("GIT_AUTHOR_NAME") or configured("user.name") or "soilci"
    email = os.environ.get("GIT_AUTHOR_EMAIL") or configured("user.email") or "soilci@localhost"
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def _clean(stderr: str, url: str) -> str:
    """git's stderr, with the URL's credentials masked and at most its last 1500 characters."""
    text = stderr.strip().replace(url, redact_url(url))
    return text[-1500:] or "(no output)"


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
        """Run git in the clone. Raises GitError (URL redacted) when ``check`` and it fails."""
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args], check=False, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} in {redact_url(self.url)} failed: {_clean(proc.stderr, self.url)}")
        return proc

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def show(self, revision: str, rel: str) -> str | None:
        """A file's text at ``revision``, or None when it did not exist there."""
        proc = self.git("show", f"{revision}:{rel}", check=False)
        return proc.stdout if proc.returncode == 0 else None


@contextmanager
def clone(url: str, *, branch: str | None = None, overlay: str = DEFAULT_OVERLAY) -> Iterator[Checkout]:
    """Clone ``url`` into a temp dir for the duration of the block.

    Raises:
        GitError: the clone failed or the repo has no commits.
        ConfigError: the repo has no ``<overlay>/kustomization.yaml``.
    """
    if branch is not None:
        check_branch(branch, f"--branch {branch!r}")
    with tempfile.TemporaryDirectory(prefix="soilci-manifests-") as tmp:
        path = Path(tmp) / "repo"
        cmd = ["git", "clone", "--quiet", "--no-tags"]
        if branch:
            cmd += ["--branch", branch]
        proc = subprocess.run([*cmd, "--", url, str(path)], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            if branch and "not found in upstream" in proc.stderr:
                raise ConfigError(f"manifests repo {redact_url(url)} has no branch {branch!r}")
            raise GitError(f"cannot clone manifests repo {redact_url(url)}: {_clean(proc.stderr, url)}")
        checkout = Checkout(url=url, path=path, branch=branch or "", overlay_rel=overlay)
        if checkout.git("rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
            raise GitError(
                f"manifests repo {redact_url(url)} has no commits; push deploy/kustomize to it first"
            )
        if not checkout.branch:
            # The remote's HEAD must name a branch: git clone would guess one for a detached HEAD.
            remote = checkout.git("ls-remote", "--symref", "origin", "HEAD").stdout
            head = next(
                (line.split()[1].removeprefix("refs/heads/") for line in remote.splitlines()
                 if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD")),
                "",
            )
            if not head:
                raise ConfigError(
                    f"manifests repo {redact_url(url)} has a detached HEAD (no default branch); "
                    "pass --branch with the branch Argo CD tracks"
                )
            checkout.branch = check_branch(head, f"manifests repo {redact_url(url)}: default branch {head!r}")
        if not (path / overlay / KUSTOMIZATION).is_file():
            raise ConfigError(f"manifests repo {redact_url(url)} has no {overlay}/{KUSTOMIZATION}")
        yield checkout


def check_branch(branch: str, what: str) -> str:
    """``branch`` if it is a plain branch name. Raises ConfigError naming ``what``."""
    ok = _BRANCH.fullmatch(branch) and branch != "HEAD" and ".." not in branch and "//" not in branch
    if not ok or branch.endswith((".lock", "/", ".")) or "/." in branch:
        raise ConfigError(f"{what}: not a plain branch name ({_BRANCH.pattern}, not HEAD)")
    return branch


@dataclass(frozen=True)
class PushResult:
    """Outcome of one change to the manifests repo."""

    commit: str | None  # None: nothing changed, nothing committed
    attempts: int
    message: str | None
    detail: object = None  # what the change function returned besides its message


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
    sees (which slot is idle, what is live), never from what an earlier attempt saw.
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
            if any(marker in proc.stderr for marker in _REFUSAL_MARKERS):
                raise GitError(f"the manifests repo {redact_url(url)} refused the push: {_clean(proc.stderr, url)}")
            if not any(marker in proc.stderr for marker in _RACE_MARKERS):
                raise GitError(f"git push to {redact_url(url)} failed: {_clean(proc.stderr, url)}")
            # Someone pushed first: take their tip and redo the change on it (a rebase by replay,
            # which re-reads the idle slot instead of re-applying a stale text diff).
            checkout.git("fetch", "--quiet", "origin", checkout.branch)
            checkout.git("reset", "--hard", "--quiet", f"origin/{checkout.branch}")
        raise GitError(f"gave up pushing to {redact_url(url)} after {attempts} lost races; try again")
