"""Which commit and which uncommitted changes a working tree holds: what a run record is tied to.

A pipeline run records both (``RunRecord.commit``, ``RunRecord.tree``); the report uses a run only when
they match the tree it reports on, so a run of another branch, commit or edit is never quoted as this one's.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from soil_contracts.git import changed_files, untracked_files


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError:
        return None


def differences(repo: Path) -> list[str]:
    """What makes the tree other than HEAD: ``changed_files`` then ``untracked_files`` (each sorted)."""
    return changed_files(repo) + untracked_files(repo)


def named(paths: list[str], limit: int = 3) -> str:
    """``paths`` for a message: the first ``limit``, then how many more."""
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def tree_state(repo: Path) -> tuple[str | None, str | None]:
    """``(commit, changes)``: HEAD's full SHA and a digest of what the tree holds beyond it, outside the
    pipeline's outputs: uncommitted changes to tracked files (their ``git diff HEAD``) and untracked files
    git does not ignore (each one's name and bytes: an imported batch not yet committed). The digest is
    sha256's first 16 hex; "" when there is neither. ``(None, None)`` outside a git repository or before
    the first commit."""
    repo = Path(repo)
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None or head.returncode != 0:
        return None, None
    files, new = changed_files(repo), untracked_files(repo)
    if not files and not new:
        return head.stdout.decode().strip(), ""
    digest = hashlib.sha256()
    if files:
        diff = _git(repo, "diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--", *files)
        digest.update(diff.stdout if diff is not None else b"")
    for path in new:
        try:
            content = hashlib.sha256((repo / path).read_bytes()).hexdigest()
        except OSError as exc:  # gone or unreadable since git listed it: still a difference from HEAD
            content = type(exc).__name__
        digest.update(f"\0{path}\0{content}".encode())
    return head.stdout.decode().strip(), digest.hexdigest()[:16]
