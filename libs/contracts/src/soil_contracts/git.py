"""The git revision and branch a run is built from, the one lookup every package shares."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REVISION_ENV = "SOILCI_GIT_REVISION"
UNKNOWN = "unknown"
# What the pipeline itself writes in a project, never a reason to call a tree different from its commit:
# dvc.lock (untracked on purpose), the files under these folders, and .gitignore files (DVC edits them).
OUTPUT_FOLDERS = ("metrics/", "reports/", "data/", "models/", "runs/")
# A library batch's files that say what data it holds: never passed over, whatever git ignores.
BATCH_RECORDS = (":(glob)library/**/batch.yaml", ":(glob)library/**/*.dvc")  # params library.path default


def is_pipeline_output(path: str) -> bool:
    """``path`` (relative to the root) is one the pipeline itself writes: ``dvc.lock``, a file under one of the
    OUTPUT_FOLDERS, or a .gitignore."""
    return path == "dvc.lock" or path.startswith(OUTPUT_FOLDERS) or path.rsplit("/", 1)[-1] == ".gitignore"


def _git(root: Path | None, *args: str) -> str | None:
    cmd = ["git", *(["-C", str(root)] if root else []), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def git_revision(root: Path | str | None = None, *, env: bool = True) -> str:
    """The commit being built: ``SOILCI_GIT_REVISION`` if set (``env``), else ``git rev-parse HEAD``.

    A working tree with uncommitted changes to tracked files, or with untracked files git does not ignore
    (an imported batch not yet committed; ``untracked_files``), gives ``<sha>-dirty``; no git or no
    repository gives ``unknown``. Stage images carry no git, so the driver passes the revision in.
    """
    if env and os.environ.get(REVISION_ENV):
        return os.environ[REVISION_ENV]
    root = Path(root) if root else None
    rev = _git(root, "rev-parse", "HEAD")
    if not rev:
        return UNKNOWN
    return f"{rev}-dirty" if changed_files(root) or untracked_files(root) else rev


def changed_files(root: Path | str | None = None) -> list[str]:
    """Tracked files that differ from HEAD (staged or not), relative to the root, sorted; the pipeline's own
    outputs (``is_pipeline_output``) left out; [] without git or before the first commit."""
    changed = _git(Path(root) if root else None, "diff", "HEAD", "--name-only", "--no-renames", "-z") or ""
    return sorted(path for path in changed.split("\0") if path and not is_pipeline_output(path))


def untracked_files(root: Path | str | None = None) -> list[str]:
    """Files in the tree that git neither tracks nor ignores, relative to the root, sorted; the pipeline's
    own outputs (``is_pipeline_output``) left out; [] without git.

    A library batch imported but not committed is such files (its batch.yaml and spectra.parquet.dvc): its
    data is in the tree but in no commit. Those two count even when an ignore rule hides them.
    """
    root = Path(root) if root else None
    listed = (_git(root, "ls-files", "--others", "--exclude-standard", "-z") or "").split("\0")
    # A batch's batch.yaml and .dvc files count even where an ignore rule hides them (.gitignore, info/exclude).
    listed += (_git(root, "ls-files", "--others", "-z", "--", *BATCH_RECORDS) or "").split("\0")
    return sorted({p for p in listed if p and not is_pipeline_output(p) and not p.startswith(".dvc/")})


def git_branch(root: Path | str | None = None) -> str | None:
    """``GITHUB_REF_NAME`` if set, else the checked-out branch; None when detached or unknown."""
    if os.environ.get("GITHUB_REF_NAME"):
        return os.environ["GITHUB_REF_NAME"]
    branch = _git(Path(root) if root else None, "rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch and branch != "HEAD" else None
