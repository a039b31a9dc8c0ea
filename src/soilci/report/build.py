"""Compare a run's benchmark results with a base revision's; write report.md (the PR comment) and report.html."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
import yaml
from soil_contracts.files import atomic_path

from soilci.errors import ConfigError

METRICS_PATH = "metrics/metrics.json"
PREDICTIONS_PATH = "metrics/predictions.csv"
DRIFT_PATH = "reports/drift.json"
DRIFT_PLOT_PATH = "reports/drift.png"
LOCK_PATH = "dvc.lock"
PARAMS_PATH = "params.yaml"
TRAINING_FILES = ("reference.parquet", "incoming.parquet")
ASSETS_DIR = "report"  # images beside report.md, referenced relatively (CML uploads them)

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20250101
CONFIDENCE = 0.95
MIN_PAIRS = 10  # fewer paired benchmark samples cannot say whether a change is real


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    better: str  # "lower", "higher" or "zero" (closest to zero)


# Order of the metrics table; RMSE first because the verdict is decided on it.
METRICS = (
    MetricSpec("rmse", "RMSE", "lower"),
    MetricSpec("r2", "R²", "higher"),
    MetricSpec("rpd", "RPD", "higher"),
    MetricSpec("rpiq", "RPIQ", "higher"),
    MetricSpec("mae", "MAE", "lower"),
    MetricSpec("bias", "Bias", "zero"),
)
COUNTS = (("n_benchmark", "benchmark samples"), ("n_train", "training samples"), ("n_dropped", "dropped rows"))


# ---------------------------------------------------------------------------------------------
# Inputs: one revision's results (base from git, PR from the working tree)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """What one side of the comparison produced."""

    label: str  # "main" or "PR"
    ref: str  # as given, e.g. "origin/main", or "working tree"
    sha: str | None
    metrics: dict[str, float] | None
    predictions: pd.DataFrame | None
    data_files: dict[str, str] = field(default_factory=dict)  # path -> md5, prepare's outs in dvc.lock
    dirty: bool = False

    @property
    def short(self) -> str:
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


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ConfigError("git is not installed; the report compares git revisions") from exc


def resolve_revision(repo: Path, ref: str) -> str:
    """Full commit SHA of ``ref``; ConfigError naming the ref when it does not exist."""
    if _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise ConfigError(f"{repo}: not a git repository; the report compares git revisions")
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ConfigError(
            f"base revision {ref!r} does not exist in {repo} "
            "(fetch it first, e.g. `git fetch origin main`, or pass an existing --base)"
        )
    return proc.stdout.strip()


def _show(repo: Path, sha: str, path: str) -> str | None:
    proc = _git(repo, "show", f"{sha}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def parse_metrics(text: str, source: str) -> dict[str, float]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object of metric names to numbers")
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def parse_predictions(text: str, source: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"sample_id": str})
    except Exception as exc:  # pandas raises several types for malformed CSV
        raise ConfigError(f"{source}: cannot read CSV ({type(exc).__name__}: {exc})") from exc
    missing = {"sample_id", "observed", "predicted"} - set(frame.columns)
    if missing:
        raise ConfigError(f"{source}: missing columns {', '.join(sorted(missing))}")
    frame = frame[["sample_id", "observed", "predicted"]].dropna()
    # Prediction error, signed the usual way: positive when the model predicts too high.
    return frame.assign(error=frame["predicted"].astype(float) - frame["observed"].astype(float))


def parse_lock_data(text: str | None) -> dict[str, str]:
    """md5 of each output of the ``prepare`` stage in a dvc.lock (the data a model saw)."""
    if not text:
        return {}
    try:
        lock = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    outs = ((lock.get("stages") or {}).get("prepare") or {}).get("outs") or []
    return {o["path"]: o.get("md5", "") for o in outs if isinstance(o, dict) and "path" in o}


def read_base(repo: Path, ref: str) -> Revision:
    """The base revision's committed metrics and predictions (None when it has none: a first PR)."""
    sha = resolve_revision(repo, ref)
    metrics_text = _show(repo, sha, METRICS_PATH)
    preds_text = _show(repo, sha, PREDICTIONS_PATH)
    return Revision(
        label="main" if ref.split("/")[-1] in {"main", "master"} else "base",
        ref=ref,
        sha=sha,
        metrics=parse_metrics(metrics_text, f"{ref}:{METRICS_PATH}") if metrics_text else None,
        predictions=parse_predictions(preds_text, f"{ref}:{PREDICTIONS_PATH}") if preds_text else None,
        data_files=parse_lock_data(_show(repo, sha, LOCK_PATH)),
    )


def read_working_tree(repo: Path) -> Revision:
    """This run's metrics and predictions from the working tree."""
    head = _git(repo, "rev-parse", "HEAD")
    sha = head.stdout.strip() if head.returncode == 0 else None
    # Uncommitted changes other than the pipeline's own outputs mean the code differs from HEAD.
    status = _git(repo, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    outputs = ("dvc.lock", "metrics/", "reports/", ".gitignore")
    dirty = any(not line[3:].startswith(outputs) and not line[3:].endswith(".gitignore") for line in status)
    metrics_file, preds_file, lock_file = repo / METRICS_PATH, repo / PREDICTIONS_PATH, repo / LOCK_PATH
    return Revision(
        label="PR",
        ref="working tree",
        sha=sha,
        metrics=parse_metrics(metrics_file.read_text(), str(metrics_file)) if metrics_file.exists() else None,
        predictions=parse_predictions(preds_file.read_text(), str(preds_file)) if preds_file.exists() else None,
        data_files=parse_lock_data(lock_file.read_text() if lock_file.exists() else None),
        dirty=dirty,
    )


@dataclass(frozen=True)
class DriftResult:
    status: str | None  # "pass" | "warn" | "fail" | None (not run)
    summary: str
    method: str | None
    alpha: float | None
    top: list[dict]
    plot: Path | None

    @property
    def word(self) -> str:
        return {"pass": "Passed", "warn": "Warning", "fail": "Failed"}.get(self.status or "", "Not run")

    @property
    def badge(self) -> str:
        return f"Data Drift Check: {self.word}"


def read_drift(repo: Path) -> DriftResult:
    path = repo / DRIFT_PATH
    plot = repo / DRIFT_PLOT_PATH
    if not path.exists():
        return DriftResult(None, "The drift gate did not run.", None, None, [], None)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    status = raw.get("status")
    if status not in {"pass", "warn", "fail"}:
        raise ConfigError(f"{path}: status must be pass, warn or fail, got {status!r}")
    return DriftResult(
        status=status,
        summary=str(raw.get("summary", "")),
        method=raw.get("method"),
        alpha=raw.get("alpha"),
        top=[t for t in raw.get("top_drifted") or [] if isinstance(t, dict)],
        plot=plot if plot.exists() else None,
    )


def read_rmse_ceiling(repo: Path) -> float | None:
    """``evaluate.rmse_max`` from the working tree's params.yaml (None: no ceiling)."""
    path = repo / PARAMS_PATH
    if not path.exists():
        return None
    try:
        value = ((yaml.safe_load(path.read_text()) or {}).get("evaluate") or {}).get("rmse_max")
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return float(value) if value is not None else None


def stale_stages(repo: Path) -> list[str] | None:
    """Stages whose outputs do not match the working tree (DVC's view); None if DVC cannot tell."""
    if not (repo / "dvc.yaml").exists():
        return None
    try:
        from dvc.repo import Repo

        with contextlib.chdir(repo), Repo(str(repo)) as dvc_repo:
            names = [s.name for s in dvc_repo.index.stages if getattr(s, "name", None)]
            if not names:
                return None
            status = dvc_repo.status(targets=names)
    except Exception:  # noqa: BLE001 - DVC raises many types for a broken or partial checkout
        return None
    order = {name: i for i, name in enumerate(names)}
    return sorted((k.split(":")[-1] for k in status), key=lambda n: order.get(n, len(order)))


@dataclass(frozen=True)
class RunRecord:
    """The latest ``soilci pipeline`` run (runs/<id>/run.json), if any."""

    path: Path
    data: dict

    @property
    def reproduced(self) -> list[str]:
        return [s["name"] for s in self.data.get("stages", []) if s.get("outcome") in {"ran", "restored"}]


def latest_run(repo: Path) -> RunRecord | None:
    runs = sorted((repo / "runs").glob("*/run.json"))
    if not runs:
        return None
    try:
        return RunRecord(runs[-1], json.loads(runs[-1].read_text()))
    except (OSError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------------------------
# Is the change real? A paired bootstrap of the RMSE difference on the benchmark set
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RmseDifference:
    n_pairs: int
    rmse_base: float
    rmse_pr: float
    low: float
    high: float
    resamples: int
    seed: int
    confidence: float

    @property
    def delta(self) -> float:
        return self.rmse_pr - self.rmse_base

    @property
    def finding(self) -> str:
        """``improvement`` or ``degradation`` when the interval excludes 0; else ``no change`` / ``noise``."""
        if self.n_pairs < MIN_PAIRS:
            return "too few samples"
        if self.low == self.high == 0.0:
            return "no change"
        if self.high < 0:
            return "improvement"
        if self.low > 0:
            return "degradation"
        return "noise"


def bootstrap_rmse_difference(
    base: pd.DataFrame,
    pr: pd.DataFrame,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> RmseDifference | None:
    """Percentile interval of RMSE(PR) - RMSE(base), resampling benchmark samples (paired on sample_id)."""
    paired = base[["sample_id", "error"]].merge(pr[["sample_id", "error"]], on="sample_id", suffixes=("_b", "_p"))
    n = len(paired)
    if n == 0:
        return None
    sq_base = paired["error_b"].to_numpy(float) ** 2
    sq_pr = paired["error_p"].to_numpy(float) ** 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    deltas = np.sqrt(sq_pr[idx].mean(axis=1)) - np.sqrt(sq_base[idx].mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    if np.array_equal(sq_base, sq_pr):
        low = high = 0.0
    return RmseDifference(
        n_pairs=n,
        rmse_base=float(np.sqrt(sq_base.mean())),
        rmse_pr=float(np.sqrt(sq_pr.mean())),
        low=float(low),
        high=float(high),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


# ---------------------------------------------------------------------------------------------
# The verdict: the merge rules of docs/SOP.md, in one place
# ---------------------------------------------------------------------------------------------

READY, REVIEW, BLOCK = "ready", "review", "block"
VERDICT_TITLES = {READY: "Ready to merge", REVIEW: "Needs review", BLOCK: "Do not merge"}
VERDICT_ICONS = {READY: "🟢", REVIEW: "🟡", BLOCK: "🔴"}


@dataclass(frozen=True)
class Verdict:
    level: str
    reason: str

    @property
    def title(self) -> str:
        return VERDICT_TITLES[self.level]

    @property
    def icon(self) -> str:
        return VERDICT_ICONS[self.level]


def decide(
    *,
    drift_status: str | None,
    pr_metrics: dict[str, float] | None,
    base_metrics: dict[str, float] | None,
    difference: RmseDifference | None,
    stale: list[str] | None,
    rmse_max: float | None,
) -> Verdict:
    """Apply docs/SOP.md's merge rules in order; the first that matches decides."""
    # 1-4: do not merge
    if drift_status == "fail":
        return Verdict(BLOCK, "the drift gate failed: the incoming samples differ from the reference set")
    if stale or pr_metrics is None or "rmse" not in pr_metrics:
        missing = f" (not up to date: {', '.join(stale)})" if stale else ""
        return Verdict(BLOCK, f"the pipeline did not finish, so there are no current benchmark metrics{missing}")
    if rmse_max is not None and pr_metrics["rmse"] > rmse_max:
        return Verdict(BLOCK, f"benchmark RMSE {pr_metrics['rmse']:.3f} is above the ceiling {rmse_max:g}")
    if difference is not None and difference.finding == "degradation":
        return Verdict(BLOCK, "benchmark RMSE is worse, and the difference is real (95% CI above 0)")
    # 5-8: needs review
    if drift_status == "warn":
        return Verdict(REVIEW, "the drift gate warned: check the drifted features before merging")
    if drift_status is None:
        return Verdict(REVIEW, "the drift gate did not run")
    if base_metrics is None or "rmse" not in base_metrics:
        return Verdict(REVIEW, "no base metrics to compare with (first run): judge the absolute numbers")
    if difference is None or difference.finding == "too few samples":
        return Verdict(REVIEW, "base and PR share too few benchmark samples to compare them")
    if difference.finding == "noise" and difference.delta > 0:
        return Verdict(REVIEW, "benchmark RMSE is slightly worse, within noise")
    # 9: ready
    reason = {
        "improvement": "benchmark RMSE improved, and the improvement is real",
        "no change": "the model's benchmark predictions are unchanged",
        "noise": "benchmark RMSE is no worse (difference within noise)",
    }[difference.finding]
    return Verdict(READY, f"{reason}; no data drift")


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def plot_errors(pr: Revision, base: Revision, assets: Path) -> dict[str, Path]:
    """Prediction-error histograms of the PR (and the base), on the same axes so they compare."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = [(s, "prediction_error.png" if s is pr else "prediction_error_base.png", c)
             for s, c in ((pr, "#1f6feb"), (base, "#8b949e")) if s.predictions is not None]
    if not sides:
        return {}
    errors = np.concatenate([s.predictions["error"].to_numpy(float) for s, _, _ in sides])
    edges = np.histogram_bin_edges(errors, bins=20)
    top = max(np.histogram(s.predictions["error"], bins=edges)[0].max() for s, _, _ in sides) * 1.15
    written = {}
    for side, name, colour in sides:
        err = side.predictions["error"].to_numpy(float)
        fig, ax = plt.subplots(figsize=(4.6, 2.9), dpi=110)
        ax.hist(err, bins=edges, color=colour, edgecolor="white")
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(err.mean(), color="#d29922", lw=1.2, ls="--", label=f"bias {err.mean():+.3f}")
        ax.set_ylim(0, top)
        ax.set_xlabel("predicted - observed")
        ax.set_ylabel("benchmark samples")
        rmse = float(np.sqrt(np.mean(err**2)))
        ax.set_title(f"{side.label} ({side.short}): RMSE {rmse:.3f}, n={len(err)}", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        path = assets / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written[side.label if side is base else "PR"] = path
    return written


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportContext:
    base: Revision
    pr: Revision
    drift: DriftResult
    difference: RmseDifference | None
    verdict: Verdict
    stale: list[str] | None
    run: RunRecord | None
    rmse_max: float | None
    plots: dict[str, Path]  # "PR" / base label -> image file
    drift_plot: Path | None


def _num(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _change(spec: MetricSpec, base: float | None, pr: float | None) -> tuple[str, str]:
    """Signed change and a better/worse marker for one metric."""
    if base is None or pr is None:
        return "n/a", ""
    delta = pr - base
    if abs(delta) <= 1e-9 * max(1.0, abs(base)):
        return "±0", "same"
    if spec.better == "zero":
        better = abs(pr) < abs(base)
    else:
        better = (delta < 0) == (spec.better == "lower")
    rel = f" ({delta / abs(base) * 100:+.1f}%)" if base and spec.better != "zero" else ""
    return f"{delta:+.3f}{rel}", "better" if better else "worse"


MARKS = {"better": "✅ better", "worse": "🔻 worse", "same": "= same", "": ""}
# The HTML page avoids emoji: a headless browser without an emoji font would draw empty boxes.
HTML_MARKS = {"better": "✓ better", "worse": "✗ worse", "same": "= same", "": ""}
BADGE_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", None: "⚪"}


def _metric_rows(ctx: ReportContext) -> list[tuple[str, str, str, str, str]]:
    rows = []
    base_m, pr_m = ctx.base.metrics or {}, (ctx.pr.metrics if not ctx.stale else None) or {}
    for spec in METRICS:
        b, p = base_m.get(spec.key), pr_m.get(spec.key)
        if b is None and p is None:
            continue
        change, mark = _change(spec, b, p)
        rows.append((spec.label, _num(b), _num(p), change, mark))
    return rows


def _finding_text(diff: RmseDifference | None) -> str:
    if diff is None:
        return "no paired benchmark predictions to compare"
    return {
        "improvement": "a real improvement",
        "degradation": "a real degradation",
        "no change": "no change: identical predictions",
        "noise": "within noise: not a real difference",
        "too few samples": f"only {diff.n_pairs} paired samples: cannot tell",
    }[diff.finding]


def _headline(ctx: ReportContext) -> str:
    b = (ctx.base.metrics or {}).get("rmse")
    p = (ctx.pr.metrics or {}).get("rmse") if not ctx.stale else None
    if b is not None and p is not None:
        return f"RMSE {_num(b)} → {_num(p)} ({p - b:+.3f})"
    if p is not None:
        return f"RMSE {_num(p)}"
    if ctx.drift.status == "fail":
        return "stopped at the drift gate"
    return "benchmark not evaluated"


def _versions(ctx: ReportContext) -> tuple[str, str]:
    code = f"{ctx.base.short} → {ctx.pr.short}{' + uncommitted changes' if ctx.pr.dirty else ''}"
    bv, pv = ctx.base.data_version, ctx.pr.data_version
    data = f"{bv or 'n/a'} → {pv or 'n/a'}" + (" (same)" if bv and bv == pv else " (changed)" if bv and pv else "")
    return code, data


def _ci_sentence(ctx: ReportContext) -> str:
    d = ctx.difference
    if ctx.stale:
        return "Not evaluated: the run stopped before the benchmark evaluation."
    if ctx.base.metrics is None:
        return "No base metrics at this revision (a first PR): nothing to compare with yet."
    if d is None:
        return "The base and PR benchmark predictions share no sample; the change cannot be tested."
    pct = round(d.confidence * 100)
    return (
        f"RMSE difference (PR − {ctx.base.label}) {d.delta:+.3f}, {pct}% CI [{d.low:+.3f}, {d.high:+.3f}] "
        f"(paired bootstrap, {d.n_pairs} benchmark samples): **{_finding_text(d)}**."
    )


def _top_drift(ctx: ReportContext, n: int = 3) -> str:
    if not ctx.drift.top:
        return ""
    items = [f"{t.get('name')} (p={_p(t.get('p_value'))})" for t in ctx.drift.top[:n]]
    return "Top drifted: " + ", ".join(items)


def _p(value) -> str:
    try:
        return f"{float(value):.2g}"
    except (TypeError, ValueError):
        return "n/a"


def _run_rows(ctx: ReportContext) -> list[tuple[str, str, str, str]]:
    if ctx.run is None:
        return []
    rows = []
    for s in ctx.run.data.get("stages", []):
        secs = s.get("seconds")
        rows.append((s.get("name", "?"), s.get("outcome", "?"), f"{secs:.1f} s" if secs is not None else "",
                     s.get("log") or ""))
    return rows


def render_markdown(ctx: ReportContext, assets_rel: str = ASSETS_DIR) -> str:
    v = ctx.verdict
    code, data = _versions(ctx)
    drift_line = f"{BADGE_ICONS.get(ctx.drift.status, '⚪')} **{ctx.drift.badge}**"
    top = _top_drift(ctx)
    lines = [
        f"## {v.icon} {v.title}: {_headline(ctx)}",
        "",
        f"{v.reason[0].upper()}{v.reason[1:]}.",
        "",
        f"{drift_line}{' · ' + top if top else ''}",
        "",
    ]
    rows = _metric_rows(ctx)
    if rows:
        lines += [
            f"| Metric | {ctx.base.label} `{ctx.base.short}` | PR `{ctx.pr.short}` | Change |",
            "|:--|--:|--:|:--|",
            *[f"| {label} | {b} | {p} | {c} {MARKS[m]} |" for label, b, p, c, m in rows],
            "",
        ]
    lines += [_ci_sentence(ctx), "", f"Code {code} · data {data}", ""]
    images = [f"![{label} prediction error]({assets_rel}/{path.name})" for label, path in
              sorted(ctx.plots.items(), key=lambda kv: kv[0] != "PR")]
    if ctx.drift.status == "fail" and ctx.drift_plot is not None:  # what failed comes first
        images.insert(0, f"![drift]({assets_rel}/{ctx.drift_plot.name})")
    if images:
        lines += [" ".join(images), ""]

    details = ["<details><summary>Details: metrics, drift, versions, run</summary>", ""]
    if ctx.pr.metrics or ctx.base.metrics:
        details += ["#### Benchmark metrics", "", f"| | {ctx.base.label} | PR |", "|:--|--:|--:|"]
        for key, label in COUNTS:
            details.append(f"| {label} | {_int((ctx.base.metrics or {}).get(key))} | "
                           f"{_int((ctx.pr.metrics or {}).get(key))} |")
        if ctx.rmse_max is not None:
            details.append(f"| RMSE ceiling (`evaluate.rmse_max`) | | {ctx.rmse_max:g} |")
        details.append("")
    if ctx.difference is not None:
        d = ctx.difference
        details += [
            "#### Paired bootstrap",
            "",
            (f"RMSE on the {d.n_pairs} paired samples: {ctx.base.label} {d.rmse_base:.4f}, PR {d.rmse_pr:.4f}; "
             f"{d.resamples} resamples of benchmark samples (seed {d.seed}), percentile interval. "
             "A real change is one whose interval excludes 0."),
            "",
        ]
    details += [f"#### {ctx.drift.badge}", "", ctx.drift.summary or "", ""]
    if ctx.drift.method:
        details += [f"Method: {ctx.drift.method}, alpha {ctx.drift.alpha}", ""]
    if ctx.drift.top:
        details += ["| drifted | kind | statistic | p-value |", "|:--|:--|--:|--:|"]
        details += [f"| {t.get('name')} | {t.get('kind', '')} | {_p(t.get('statistic'))} | {_p(t.get('p_value'))} |"
                    for t in ctx.drift.top[:10]]
        details.append("")
    if ctx.drift_plot is not None:
        details += [f"![drift]({assets_rel}/{ctx.drift_plot.name})", ""]
    ref = f" ({ctx.base.ref})" if ctx.base.ref != ctx.base.sha else ""
    details += ["#### Versions compared", "", "| | " + ctx.base.label + " | PR |", "|:--|:--|:--|",
                f"| git | `{ctx.base.sha or 'n/a'}`{ref} | `{ctx.pr.sha or 'n/a'}` |"]
    for path in sorted(set(ctx.base.data_files) | set(ctx.pr.data_files)):
        details.append(f"| {path} | `{ctx.base.data_files.get(path, 'n/a')[:12]}` | "
                       f"`{ctx.pr.data_files.get(path, 'n/a')[:12]}` |")
    details.append("")
    if ctx.stale:
        details += [f"Not up to date in this tree: {', '.join(ctx.stale)}.", ""]
    run_rows = _run_rows(ctx)
    if run_rows:
        details += [f"#### Run `{ctx.run.path.parent.name}` ({ctx.run.data.get('mode', '?')})", "",
                    "| stage | outcome | time | log |", "|:--|:--|--:|:--|"]
        details += [f"| {n} | {o} | {t} | {f'`{log}`' if log else ''} |" for n, o, t, log in run_rows]
        details.append("")
        if ctx.run.reproduced:
            details += [(f"This run reproduced {', '.join(ctx.run.reproduced)}: commit `dvc.lock`, `metrics/` and "
                         "`reports/drift.json` with the PR so main records these results."), ""]
    details += ["</details>", ""]
    return "\n".join(lines + details)


def _int(value) -> str:
    return "n/a" if value is None else f"{int(value)}"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def render_html(ctx: ReportContext) -> str:
    """The same report as one self-contained page (inline CSS, images as data URIs)."""
    e = html.escape
    v = ctx.verdict
    code, data = _versions(ctx)
    rows = "".join(
        f"<tr><td>{e(label)}</td><td>{e(b)}</td><td>{e(p)}</td>"
        f"<td class='{m}'>{e(c)} {e(HTML_MARKS[m])}</td></tr>"
        for label, b, p, c, m in _metric_rows(ctx)
    )
    table = (
        f"<table class='metrics'><thead><tr><th>Metric</th><th>{e(ctx.base.label)} <code>{e(ctx.base.short)}</code>"
        f"</th><th>PR <code>{e(ctx.pr.short)}</code></th><th>Change</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows else ""
    )
    ci = e(_ci_sentence(ctx)).replace("**", "")
    figures = "".join(
        f"<figure><img alt='{e(label)} prediction error' src='{_data_uri(path)}'></figure>"
        for label, path in sorted(ctx.plots.items(), key=lambda kv: kv[0] != "PR")
    )
    if ctx.drift.status == "fail" and ctx.drift_plot is not None:  # what failed comes first
        figures = f"<figure class='wide'><img alt='drift' src='{_data_uri(ctx.drift_plot)}'></figure>" + figures
    top = e(_top_drift(ctx))
    template = Template((Path(__file__).parent / "templates" / "report.html").read_text())
    return template.substitute(
        title=e(f"{v.title}: {_headline(ctx)}"),
        level=v.level,
        verdict=e(v.title),
        headline=e(_headline(ctx)),
        reason=e(v.reason[0].upper() + v.reason[1:]) + ".",
        drift_class=ctx.drift.status or "none",
        drift_badge=e(ctx.drift.badge),
        drift_word=e(ctx.drift.word),
        top_drift=top,
        table=table,
        ci=ci,
        code=e(code),
        data=e(data),
        figures=figures,
        details=_details_html(ctx),
    )


def _details_html(ctx: ReportContext) -> str:
    e = html.escape
    parts = []
    d = ctx.difference
    counts = "".join(
        f"<tr><td>{e(label)}</td><td>{_int((ctx.base.metrics or {}).get(k))}</td>"
        f"<td>{_int((ctx.pr.metrics or {}).get(k))}</td></tr>" for k, label in COUNTS
    )
    parts.append(f"<h4>Benchmark</h4><table><tr><th></th><th>{e(ctx.base.label)}</th><th>PR</th></tr>{counts}</table>")
    if d is not None:
        parts.append(
            f"<p>Paired bootstrap: RMSE on {d.n_pairs} paired samples {e(ctx.base.label)} {d.rmse_base:.4f}, "
            f"PR {d.rmse_pr:.4f}; {d.resamples} resamples (seed {d.seed}), percentile interval.</p>"
        )
    parts.append(f"<h4>{e(ctx.drift.badge)}</h4><p>{e(ctx.drift.summary)}</p>")
    if ctx.drift.top:
        rows = "".join(
            f"<tr><td>{e(str(t.get('name')))}</td><td>{e(str(t.get('kind', '')))}</td>"
            f"<td>{_p(t.get('statistic'))}</td><td>{_p(t.get('p_value'))}</td></tr>" for t in ctx.drift.top[:10]
        )
        parts.append(f"<table><tr><th>drifted</th><th>kind</th><th>statistic</th><th>p-value</th></tr>{rows}</table>")
    if ctx.drift_plot is not None:
        parts.append(f"<img class='drift' alt='drift' src='{_data_uri(ctx.drift_plot)}'>")
    files = "".join(
        f"<tr><td>{e(p)}</td><td><code>{e(ctx.base.data_files.get(p, 'n/a')[:12])}</code></td>"
        f"<td><code>{e(ctx.pr.data_files.get(p, 'n/a')[:12])}</code></td></tr>"
        for p in sorted(set(ctx.base.data_files) | set(ctx.pr.data_files))
    )
    parts.append(
        f"<h4>Versions compared</h4><table><tr><th></th><th>{e(ctx.base.label)}</th><th>PR</th></tr>"
        f"<tr><td>git</td><td><code>{e(ctx.base.sha or 'n/a')}</code></td><td><code>{e(ctx.pr.sha or 'n/a')}</code>"
        f"</td></tr>{files}</table>"
    )
    if ctx.stale:
        parts.append(f"<p>Not up to date in this tree: {e(', '.join(ctx.stale))}.</p>")
    run_rows = _run_rows(ctx)
    if run_rows:
        rows = "".join(f"<tr><td>{e(n)}</td><td>{e(o)}</td><td>{e(t)}</td>"
                       f"<td>{f'<code>{e(log)}</code>' if log else ''}</td></tr>" for n, o, t, log in run_rows)
        parts.append(f"<h4>Run {e(ctx.run.path.parent.name)}</h4>"
                     f"<table><tr><th>stage</th><th>outcome</th><th>time</th><th>log</th></tr>{rows}</table>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    verdict: Verdict
    context: ReportContext


def build_context(repo: Path, base_ref: str, assets: Path) -> ReportContext:
    repo = Path(repo).resolve()
    base = read_base(repo, base_ref)
    pr = read_working_tree(repo)
    drift = read_drift(repo)
    stale = stale_stages(repo)
    # Metrics left over from an earlier run do not describe this tree: leave them out.
    current = replace(pr, metrics=None, predictions=None) if stale else pr
    difference = None
    if base.predictions is not None and current.predictions is not None:
        difference = bootstrap_rmse_difference(base.predictions, current.predictions)
    rmse_max = read_rmse_ceiling(repo)
    verdict = decide(
        drift_status=drift.status,
        pr_metrics=current.metrics,
        base_metrics=base.metrics,
        difference=difference,
        stale=stale,
        rmse_max=rmse_max,
    )
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)
    plots = plot_errors(current, base, assets)
    drift_plot = None
    if drift.plot is not None:
        drift_plot = assets / "drift.png"
        shutil.copyfile(drift.plot, drift_plot)
    return ReportContext(
        base=base, pr=pr, drift=drift, difference=difference, verdict=verdict, stale=stale,
        run=latest_run(repo), rmse_max=rmse_max, plots=plots, drift_plot=drift_plot,
    )


def write_report(repo: Path, base_ref: str, out_dir: Path) -> ReportFiles:
    """Compare the working tree's run with ``base_ref`` and write report.md, report.html and report/."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(Path(repo), base_ref, out_dir / ASSETS_DIR)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    with atomic_path(md_path) as tmp:
        tmp.write_text(render_markdown(ctx))
    with atomic_path(html_path) as tmp:
        tmp.write_text(render_html(ctx))
    return ReportFiles(markdown=md_path, html=html_path, verdict=ctx.verdict, context=ctx)
