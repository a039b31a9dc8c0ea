"""Which commit and which uncommitted changes a working tree holds: what a run record is tied to.

A pipeline run records both (``RunRecord.commit``, ``RunRecord.tree``); the report uses a run only when
they match the tree it reports on, so a run of another branch, commit or edit is never quoted as this one's.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

# Changes to these do not make the code differ from HEAD: they are what the pipeline writes.
PIPELINE_OUTPUTS = ("dvc.lock", "metrics/", "reports/", "data/", "models/", "runs/", ".gitignore")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError:
        return None


def is_pipeline_output(path: str) -> bool:
    """``path`` (relative to the root) is one the pipeline itself writes (PIPELINE_OUTPUTS, any .gitignore)."""
    return path.startswith(PIPELINE_OUTPUTS) or path.endswith(".gitignore")


def changed_files(repo: Path) -> list[str]:
    """Tracked files that differ from HEAD (staged or not), the pipeline's own outputs left out; [] without git."""
    proc = _git(repo, "status", "--porcelain", "--untracked-files=no", "--no-renames", "-z")
    if proc is None or proc.returncode != 0:
        return []
    paths = [entry[3:] for entry in proc.stdout.decode(errors="replace").split("\0") if len(entry) > 3]
    return sorted(p for p in paths if not is_pipeline_output(p))


def tree_state(repo: Path) -> tuple[str | None, str | None]:
    """``(commit, changes)``: HEAD's full SHA and a digest of the uncommitted changes to tracked files outside
    the pipeline's outputs (sha256 of their ``git diff HEAD``, first 16 hex; "" when there are none).
    ``(None, None)`` outside a git repository or before the first commit."""
    repo = Path(repo)
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None or head.returncode != 0:
        return None, None
    files = changed_files(repo)
    if not files:
        return head.stdout.decode().strip(), ""
    diff = _git(repo, "diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--", *files)
    digest = hashlib.sha256(diff.stdout if diff is not None else b"").hexdigest()[:16]
    return head.stdout.decode().strip(), digest
