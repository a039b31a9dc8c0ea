"""Before a run's stages: the library's DVC-tracked spectra here and in DVC's cache, and ``dvc pull`` with progress.

The spectra a branch's ``.dvc`` files name are pulled when missing, cached when present but not in the cache
(restored outside DVC, e.g. by ``soilci library demo``), and refused when they are another branch's.
"""

from __future__ import annotations

import time
from pathlib import Path

from soilci.errors import ConfigError
from soilci.pipeline import dvc, remote
from soilci.pipeline.progress import Progress


def pull(repo: Path | dvc.DvcRepo, run_dir: Path, progress: Progress, prefix: str = "") -> str:
    """``remote.pull`` (log: ``run_dir``/pull.log) shown as the run's "pull" step; DVC's summary, which
    run.json records."""
    with progress.step("pull"):
        t0 = time.monotonic()
        summary = remote.pull(repo, run_dir / "pull.log")
    progress.done("pull", prefix + summary, seconds=time.monotonic() - t0)
    return summary


def settle_tracked_data(root: Path, repo: Path | dvc.DvcRepo, run_dir: Path,
                        progress: Progress) -> tuple[dict[str, list] | None, str | None]:
    """The library's DVC-tracked spectra: pull what is missing, cache what is present but uncached.

    Returns:
        The ``dvc status`` it read when it wrote nothing since (still the tree's), else None; and the
        pull's summary when it pulled, else None.

    Raises:
        ConfigError: tracked files are missing here and in the remote, or are not the version their .dvc
            files name (another branch's: exit 2, naming them and 'dvc checkout').
    """
    from soil_contracts.library import dvc_pointer_mismatch

    def absent(data: dict[str, dict[str, str]]) -> list[str]:
        return sorted(path for outs in data.values() for path in outs if not (root / path).exists())

    status: dict[str, list] | None = dvc.repo_status(repo)
    data = dvc.tracked_changes(status)
    pulled = None
    if absent(data):
        pulled = pull(repo, run_dir, progress, prefix="tracked data: ")
        status = None
        data = dvc.tracked_data(repo)
    if missing := absent(data):
        raise ConfigError(f"{', '.join(missing[:5])}: tracked by DVC but neither here nor in the DVC remote; "
                          "'dvc push' them from where they were imported ('soilci library demo' rebuilds "
                          "the demo library's)")
    # Before caching what DVC's cache lacks: never record another branch's spectra under this branch's .dvc.
    mismatched = [m for outs in data.values() for path in outs if (m := dvc_pointer_mismatch(root / path))]
    if mismatched:
        raise ConfigError("; ".join(mismatched))
    uncached = [f for f, outs in data.items() if set(outs.values()) == {"not in cache"}]
    if uncached:
        dvc.cache_tracked(repo, uncached)
        progress.info(f"cached {len(uncached)} tracked file(s) present but not in DVC's cache")
        status = None
    return status, pulled
