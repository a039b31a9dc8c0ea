"""The git revision and branch a run is built from, the one lookup every package shares."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REVISION_ENV = "SOILCI_GIT_REVISION"
UNKNOWN = "unknown"


def _git(root: Path | None, *args: str) -> str | None:
    cmd = ["git", *(["-C", str(root)] if root else []), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def git_revision(root: Path | str | None = None, *, env: bool = True) -> str:
    """The commit being built: ``SOILCI_GIT_REVISION`` if set (``env``), else ``git rev-parse HEAD``.

    A working tree with uncommitted changes to tracked files gives ``<sha>-dirty``; no git or no
    repository gives ``unknown``. Stage images carry no git, so the driver passes the revision in.
    """
    if env and os.environ.get(REVISION_ENV):
        return os.environ[REVISION_ENV]
    root = Path(root) if root else None
    rev = _git(root, "rev-parse", "HEAD")
    if not rev:
        return UNKNOWN
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{rev}-dirty" if dirty else rev


def git_branch(root: Path | str | None = None) -> str | None:
    """``GITHUB_REF_NAME`` if set, else the checked-out branch; None when detached or unknown."""
    if os.environ.get("GITHUB_REF_NAME"):
        return os.environ["GITHUB_REF_NAME"]
    branch = _git(Path(root) if root else None, "rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch and branch != "HEAD" else None
