"""Main's results by commit, kept in the DVC remote so nobody commits dvc.lock or metrics/ by hand.

``soilci pipeline --push`` on a clean tree (main's workflow) publishes a ``ResultsRecord`` of the run:
the result files' text (metrics.json, predictions.csv, library.json, drift.json, the model's
soilci.json, dvc.lock), keyed by the commit, as ``<remote>/soilci-results/<commit>.json``. The record
is small (about 10 kB); the data and model themselves are the DVC objects ``dvc push`` sent.

``soilci report --base REF`` reads the base's numbers from git when the base commit holds them, else
from this store: ``.soilci/results/<commit>.json`` (what ``soilci results pull`` fetched) first, then
the DVC remote. When the base commit has no record yet (its main run has not finished), the nearest
first-parent ancestor with one is used, and the report says which commit that is and where its
numbers came from.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from soil_contracts._record import Record
from soil_contracts.errors import ContractError
from soilci.errors import ConfigError
from soilci.revision import differences, named, tree_state

REMOTE_DIR = "soilci-results"  # under the DVC remote's root, beside DVC's own files/ folder
LOCAL_DIR = Path(".soilci") / "results"
# How far back along main's first-parent history the report looks for a published record.
MAX_ANCESTORS = 20
FILES = {  # record field -> result file in the working tree
    "metrics": "metrics/metrics.json",
    "predictions": "metrics/predictions.csv",
    "library": "data/library.json",
    "drift": "reports/drift.json",
    "model": "models/model/soilci.json",
    "dvc_lock": "dvc.lock",
}


class ResultsRecord(Record):
    """``soilci-results/<commit>.json``: one pipeline run's results at a commit, as text of each file."""

    kind: str = "results record"

    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    created: str
    metrics: str
    predictions: str
    library: str | None = None
    drift: str | None = None
    model: str | None = None
    dvc_lock: str | None = None


@dataclass(frozen=True)
class Found:
    """A record the report uses for the base, and where it came from."""

    record: ResultsRecord
    source: str  # "the DVC remote (<url>)" or "the local copy .soilci/results/"
    behind: int  # first-parent commits between the base asked for and the record's commit (0: the same)


def _git(root: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def clean_commit(root: Path) -> str | None:
    """HEAD's commit when the tracked files match it (except the pipeline's outputs); else None."""
    commit, changes = tree_state(root)
    return commit if changes == "" else None


def collect(root: Path, commit: str) -> ResultsRecord:
    """The working tree's results as a record of ``commit``.

    Raises:
        ConfigError: metrics.json or predictions.csv is missing (the run did not reach evaluate).
    """
    texts = {field: (root / rel).read_text() if (root / rel).is_file() else None for field, rel in FILES.items()}
    missing = [FILES[f] for f in ("metrics", "predictions") if texts[f] is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: not in {root}; no results to publish (run the pipeline first)")
    return ResultsRecord(commit=commit, created=datetime.now(UTC).isoformat(timespec="seconds"), **texts)


@contextlib.contextmanager
def _remote(root: Path):
    """The default DVC remote's filesystem and its root path. Raises ConfigError without one."""
    from soilci.pipeline.dvc import open_repo

    try:
        with open_repo(root) as repo:
            remote = repo.cloud.get_remote()
            yield remote.fs, remote.path
    except ConfigError:
        raise
    except Exception as exc:  # DVC's errors: no remote, bad config
        raise ConfigError(f"DVC remote: {type(exc).__name__}: {exc}") from exc


def _remote_name(fs, base: str, commit: str) -> str:
    return fs.join(base, REMOTE_DIR, f"{commit}.json")


def publish(root: Path, record: ResultsRecord) -> str:
    """Write ``record`` to the DVC remote (and the local copy); return the remote file's location.

    Raises:
        ConfigError: no DVC remote, or it cannot be written.
    """
    text = record.to_json()
    with _remote(root) as (fs, base):
        name = _remote_name(fs, base, record.commit)
        try:
            fs.makedirs(fs.parent(name), exist_ok=True)
            fs.pipe_file(name, text.encode())
        except Exception as exc:  # fsspec backends raise their own types
            raise ConfigError(f"cannot write the results record {name} ({type(exc).__name__}: {exc})") from exc
    record.save(root / LOCAL_DIR / f"{record.commit}.json")
    return fs.unstrip_protocol(name) if hasattr(fs, "unstrip_protocol") else name


def push_results(root: Path) -> tuple[str, str]:
    """What main's workflow leaves after its run, for a tree whose pipeline already ran (scripts/up.sh's stack).

    ``dvc push`` of the outputs, then HEAD's results record, as ``soilci pipeline --push`` does after its
    stages; under the working tree's pipeline lock.

    Returns:
        (the commit, the record's location in the remote).

    Raises:
        ConfigError: a stage is not as dvc.lock records (run the pipeline first), the tree differs from
            HEAD (uncommitted changes or untracked files), no metrics, or no DVC remote / the push failed.
        TreeBusy: a pipeline run holds the tree (exit 3).
    """
    from soilci.pipeline import dvc, remote
    from soilci.pipeline.lock import TreeLock

    with TreeLock(root):
        if stale := dvc.changed_stages(root):
            raise ConfigError(f"stage(s) {', '.join(stale)} differ from dvc.lock: these are not one run's results; "
                              "run `soilci pipeline --push` instead")
        commit = clean_commit(root)
        if commit is None:
            raise ConfigError(f"the tree differs from HEAD ({named(differences(root))}), so the results are no "
                              "commit's; commit or remove what differs, then rerun the pipeline")
        record = collect(root, commit)
        log = root / LOCAL_DIR.parent / "results-push.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        remote.push(root, log)
        return commit, publish(root, record)


def _parse(text: str, where: str) -> ResultsRecord | None:
    import json

    try:
        return ResultsRecord.parse(json.loads(text), where=where)
    except (ValueError, ContractError):
        return None


def pull(root: Path, commits: list[str]) -> dict[str, ResultsRecord]:
    """Fetch the records of ``commits`` that the DVC remote holds into ``.soilci/results/``.

    Raises:
        ConfigError: no DVC remote, or it cannot be read.
    """
    found: dict[str, ResultsRecord] = {}
    with _remote(root) as (fs, base):
        for commit in commits:
            name = _remote_name(fs, base, commit)
            try:
                if not fs.exists(name):
                    continue
                text = fs.cat_file(name).decode()
            except Exception as exc:  # fsspec backends raise their own types
                raise ConfigError(f"cannot read {name} ({type(exc).__name__}: {exc})") from exc
            record = _parse(text, name)
            if record is not None and record.commit == commit:
                record.save(root / LOCAL_DIR / f"{commit}.json")
                found[commit] = record
    return found


def ancestors(root: Path, sha: str, limit: int = MAX_ANCESTORS) -> list[str]:
    """``sha`` and its first-parent ancestors, newest first (at most ``limit``)."""
    out = _git(root, "rev-list", "--first-parent", f"--max-count={limit}", sha)
    return out.split() if out else [sha]


def find(root: Path, sha: str) -> tuple[Found | None, str]:
    """The record of ``sha`` or its nearest first-parent ancestor: the local copy first, then the remote.

    Returns the record (None: none found) and, when none was found, why (a clause for the report).
    """
    chain = ancestors(root, sha)
    for behind, commit in enumerate(chain):
        local = root / LOCAL_DIR / f"{commit}.json"
        if local.is_file():
            record = _parse(local.read_text(), str(local))
            if record is not None and record.commit == commit:
                return Found(record, f"the local copy {LOCAL_DIR}/ (fetched from the DVC remote)", behind), ""
    try:
        with _remote(root) as (fs, base):
            url = fs.unstrip_protocol(base) if hasattr(fs, "unstrip_protocol") else base
    except ConfigError as exc:
        return None, f"not in git, and the DVC remote cannot be read ({exc})"
    try:
        fetched = pull(root, chain)
    except ConfigError as exc:
        return None, f"not in git, and the DVC remote cannot be read ({exc})"
    for behind, commit in enumerate(chain):
        if commit in fetched:
            return Found(fetched[commit], f"the DVC remote ({url})", behind), ""
    return None, (f"not in git, and the DVC remote holds no results of this commit or its {len(chain) - 1} "
                  "previous ones (has main's workflow run `soilci pipeline --push`?)")
