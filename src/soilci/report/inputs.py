"""What the report compares: this run's results from the working tree, the base revision's from git."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from soil_contracts.git import UNKNOWN, git_revision
from soilci.errors import ConfigError
from soilci.report.comparable import Identity, parse_identity
from soilci.revision import differences

METRICS_PATH = "metrics/metrics.json"
PREDICTIONS_PATH = "metrics/predictions.csv"
LOCK_PATH = "dvc.lock"
PARAMS_PATH = "params.yaml"
TRAINING_FILES = ("reference.parquet", "incoming.parquet")
RESIDUAL_TOLERANCE = 2e-6  # evaluate rounds each column to 6 decimals


@dataclass(frozen=True)
class Revision:
    """What one side of the comparison produced."""

    label: str  # "main", "base" or "PR"
    ref: str  # as given, e.g. "origin/main", or "working tree"
    sha: str | None
    metrics: dict[str, float] | None  # metrics.json: rmse, r2, rpd, rpiq, mae, bias, n_* counts
    predictions: pd.DataFrame | None  # one row a benchmark sample: sample_id, observed, predicted, error
    data_files: dict[str, str] = field(default_factory=dict)  # path -> md5, prepare's outs in dvc.lock
    dirty: bool = False
    identity: Identity | None = None  # the metrics' target, unit and benchmark hash
    source: str = "git"  # where the numbers came from: "git", "the DVC remote (<url>)", "the working tree"
    asked: str | None = None  # the commit ``ref`` names, when the numbers are of an earlier one (``sha``)
    note: str = ""  # why there are no numbers (none in git nor in the results store), for the report
    model_text: str | None = None  # the model's soilci.json from the results store (git holds none)

    @property
    def short(self) -> str:
        """The first 7 hex digits of the commit, or ``n/a``."""
        return self.sha[:7] if self.sha else "n/a"

    @property
    def data_version(self) -> str | None:
        """The trainer's ``data_version`` of the training files, computed from dvc.lock (first 8 hex).

        Same id as the model's MLflow tag and soilci.json: md5 over sorted ``<file name> <md5>`` lines
        of the reference and incoming sets.
        """
        files = {Path(p).name: m for p, m in self.data_files.items() if Path(p).name in TRAINING_FILES}
        if not files:
            return None
        text = "".join(f"{name} {md5}\n" for name, md5 in sorted(files.items()))
        return hashlib.md5(text.encode()).hexdigest()[:8]


def git_run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ConfigError("git is not installed; the report compares git revisions") from exc


def resolve_revision(repo: Path, ref: str) -> str:
    """Full commit SHA of ``ref`` in ``repo``.

    Raises:
        ConfigError: ``repo`` is not a git repository, or ``ref`` names no commit there (named).
    """
    if git_run(repo, "rev-parse", "--git-dir").returncode != 0:
        raise ConfigError(f"{repo}: not a git repository; the report compares git revisions")
    proc = git_run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ConfigError(
            f"base revision {ref!r} does not exist in {repo} "
            "(fetch it first, e.g. `git fetch origin main`, or pass an existing --base)"
        )
    return proc.stdout.strip()


def git_show(repo: Path, sha: str, path: str) -> str | None:
    proc = git_run(repo, "show", f"{sha}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def parse_metrics(text: str, source: str) -> dict[str, float]:
    """The numeric entries of a metrics.json (other entries are left out).

    Raises:
        ConfigError: not JSON, or not an object; ``source`` names the file.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object of metric names to numbers")
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def parse_predictions(text: str, source: str) -> pd.DataFrame:
    """A predictions.csv as rows of ``sample_id`` (str), ``observed``, ``predicted`` and ``error``.

    ``error`` is predicted - observed, in the target's unit: positive when the model predicts too
    high. Rows with a missing value are dropped. A ``residual`` column, when present, must be the same
    predicted - observed (evaluate writes it so).

    Raises:
        ConfigError: unreadable CSV, a missing column, or a residual of the other sign; ``source``
            names the file.
    """
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"sample_id": str})
    except Exception as exc:  # pandas raises several types for malformed CSV
        raise ConfigError(f"{source}: cannot read CSV ({type(exc).__name__}: {exc})") from exc
    missing = {"sample_id", "observed", "predicted"} - set(frame.columns)
    if missing:
        raise ConfigError(f"{source}: missing columns {', '.join(sorted(missing))}")
    error = frame["predicted"].astype(float) - frame["observed"].astype(float)
    if "residual" in frame.columns:  # one sign everywhere: a file with observed - predicted is refused
        stated = pd.to_numeric(frame["residual"], errors="coerce")
        both = stated.notna() & error.notna()
        if both.any() and not np.allclose(stated[both], error[both], atol=RESIDUAL_TOLERANCE):
            raise ConfigError(f"{source}: column residual is not predicted - observed (the sign convention of "
                              "bias, the plots and the report); was it written as observed - predicted?")
    frame = frame[["sample_id", "observed", "predicted"]].dropna()
    return frame.assign(error=frame["predicted"].astype(float) - frame["observed"].astype(float))


def parse_lock_data(text: str | None) -> dict[str, str]:
    """md5 of each output of the ``prepare`` stage in a dvc.lock (the data a model saw); {} if none."""
    if not text:
        return {}
    try:
        lock = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    outs = ((lock.get("stages") or {}).get("prepare") or {}).get("outs") or []
    return {o["path"]: o.get("md5", "") for o in outs if isinstance(o, dict) and "path" in o}


def read_base(repo: Path, ref: str) -> Revision:
    """The base revision's metrics and predictions: committed in git, else main's published results
    (``baseline.find``: by commit, from the DVC remote); None when neither has them (a first PR).

    Raises:
        ConfigError: no such revision, or its committed metrics/predictions are unreadable.
    """
    from soilci.report.baseline import find

    sha = resolve_revision(repo, ref)
    label = "main" if ref.split("/")[-1] in {"main", "master"} else "base"
    metrics_text = git_show(repo, sha, METRICS_PATH)
    if metrics_text is None:  # results are not committed: main's workflow publishes them by commit
        found, why = find(repo, sha)
        if found is None:
            return Revision(label=label, ref=ref, sha=sha, metrics=None, predictions=None, note=why)
        rec = found.record
        where = f"{rec.commit[:7]} in {found.source}"
        return Revision(
            label=label, ref=ref, sha=rec.commit,
            metrics=parse_metrics(rec.metrics, f"{where}: metrics.json"),
            predictions=parse_predictions(rec.predictions, f"{where}: predictions.csv"),
            data_files=parse_lock_data(rec.dvc_lock), identity=parse_identity(rec.metrics),
            source=found.source, asked=sha if found.behind else None, model_text=rec.model,
        )
    preds_text = git_show(repo, sha, PREDICTIONS_PATH)
    return Revision(
        label=label,
        ref=ref,
        sha=sha,
        metrics=parse_metrics(metrics_text, f"{ref}:{METRICS_PATH}") if metrics_text else None,
        predictions=parse_predictions(preds_text, f"{ref}:{PREDICTIONS_PATH}") if preds_text else None,
        data_files=parse_lock_data(git_show(repo, sha, LOCK_PATH)),
        identity=parse_identity(metrics_text),
    )


def read_working_tree(repo: Path) -> Revision:
    """This run's metrics and predictions from the working tree.

    Raises:
        ConfigError: metrics.json or predictions.csv exists but is unreadable.
    """
    revision = git_revision(repo, env=False)
    sha = None if revision == UNKNOWN else revision.removesuffix("-dirty")
    # Uncommitted changes or untracked files other than the pipeline's own outputs: the tree differs from HEAD.
    dirty = bool(differences(repo))
    metrics_file, preds_file, lock_file = repo / METRICS_PATH, repo / PREDICTIONS_PATH, repo / LOCK_PATH
    metrics_text = metrics_file.read_text() if metrics_file.exists() else None
    return Revision(
        label="PR",
        ref="working tree",
        source="the working tree",
        sha=sha,
        metrics=parse_metrics(metrics_text, str(metrics_file)) if metrics_text is not None else None,
        predictions=parse_predictions(preds_file.read_text(), str(preds_file)) if preds_file.exists() else None,
        data_files=parse_lock_data(lock_file.read_text() if lock_file.exists() else None),
        dirty=dirty,
        identity=parse_identity(metrics_text),
    )


def read_rmse_ceiling(repo: Path) -> float | None:
    """``evaluate.rmse_max`` from the working tree's params.yaml (None: no ceiling).

    Raises:
        ConfigError: params.yaml is not valid YAML.
    """
    path = repo / PARAMS_PATH
    if not path.exists():
        return None
    try:
        value = ((yaml.safe_load(path.read_text()) or {}).get("evaluate") or {}).get("rmse_max")
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return float(value) if value is not None else None
