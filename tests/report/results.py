"""Benchmark results in a git repo: the base commit holds one model's, the working tree another's.

Import as ``from tests.report.results import make_repo``; the ``models`` fixture is in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from soilci.cli import main
from tests.support import add_batch

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

DRIFT_PASS = {"status": "pass", "drift_detected": False, "method": "pca-ks", "alpha": 0.05,
              "summary": "No component of the incoming spectra differs from the reference.", "top_drifted": []}
DRIFT_FAIL = {**DRIFT_PASS, "status": "fail", "drift_detected": True,
              "summary": "4 of 10 components differ.",
              "top_drifted": [{"name": "PC1", "kind": "component", "statistic": 0.61, "p_value": 1e-9},
                              {"name": "1900-2000 nm", "kind": "region", "statistic": 0.4, "p_value": 2e-4}]}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def fit_predict(prepared: Path, components: int, step: int = 8) -> tuple[dict, pd.DataFrame]:
    """A real PLS model on LimeSoDa's reference set, scored on the benchmark set, as evaluate would."""
    from sklearn.cross_decomposition import PLSRegression

    ref = pd.read_parquet(prepared / "reference.parquet")
    bench = pd.read_parquet(prepared / "benchmark.parquet")
    bands = [c for c in ref.columns if c.startswith("wl_")][::step]
    model = PLSRegression(n_components=components).fit(ref[bands], ref["SOC_target"])
    predicted = model.predict(bench[bands]).ravel()
    observed = bench["SOC_target"].to_numpy()
    err = predicted - observed
    rmse = float(np.sqrt(np.mean(err**2)))
    sd, iqr = observed.std(ddof=1), np.subtract(*np.percentile(observed, [75, 25]))
    metrics = {
        "rmse": rmse, "mae": float(np.mean(np.abs(err))), "bias": float(err.mean()),
        "r2": float(1 - np.sum(err**2) / np.sum((observed - observed.mean()) ** 2)),
        "rpd": float(sd / rmse), "rpiq": float(iqr / rmse),
        "n_benchmark": len(bench), "n_train": len(ref), "n_dropped": 0,
        "target": "SOC_target", "unit": "%", "benchmark_sha256": "f" * 64,
    }
    preds = pd.DataFrame({"sample_id": bench["sample_id"], "observed": observed, "predicted": predicted,
                          "residual": predicted - observed})
    return metrics, preds


def write_results(repo: Path, result: tuple[dict, pd.DataFrame] | None, drift: dict | None = DRIFT_PASS,
                  data_md5: str = "a" * 32) -> None:
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "reports").mkdir(exist_ok=True)
    if result is not None:
        metrics, preds = result
        (repo / "metrics" / "metrics.json").write_text(json.dumps(metrics))
        preds.to_csv(repo / "metrics" / "predictions.csv", index=False)
    if drift is not None:
        (repo / "reports" / "drift.json").write_text(json.dumps(drift))
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "x", "outs": [
        {"path": f"data/{n}.parquet", "md5": data_md5, "size": 1} for n in ("reference", "benchmark", "incoming")]}}}
    (repo / "dvc.lock").write_text(json.dumps(lock))


def make_repo(tmp_path: Path, base, pr, pr_drift=DRIFT_PASS, params: str = "evaluate:\n  rmse_max: null\n") -> tuple[Path, str]:
    """A git repo whose first commit holds the base results and whose working tree holds the PR's."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "params.yaml").write_text(params)
    write_results(repo, base)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    sha = git(repo, "rev-parse", "HEAD")
    write_results(repo, pr, pr_drift, data_md5="b" * 32)
    return repo, sha


def run_report(repo: Path, base: str, capsys, *extra: str) -> tuple[int, str, str]:
    """``soilci report`` into repo/out: exit code, report.md ("" if not written), stderr."""
    out = repo / "out"
    code = main(["report", "--base", base, "--repo", str(repo), "--out-dir", str(out), *extra])
    err = capsys.readouterr().err
    md = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    return code, md, err


def edit_params(project: Path, *edits: tuple[str, str]) -> None:
    """Replace text in the project's params.yaml, each (old, new) exactly once."""
    path = project / "params.yaml"
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)


# The pull requests of the slow tests that run the pipeline. test_baseline's PR A and PR B are
# test_changes' and test_comparable's: made by one function each, they are the same runs (same data, params
# and code), so the later test restores its stages from the shared DVC run-cache (conftest.shared_cache).
def make_batch_and_params_pr(project: Path, prepared: Path) -> None:
    """Batch lab-a (the first 23 rows of the prepared PR batch) and two params changed:
    ``train.pls.max_components`` 20 -> 12 and ``train.seed`` 2025 -> 7."""
    add_batch(project, "lab-a", pd.read_parquet(prepared / "incoming.parquet").iloc[:23])
    edit_params(project, ("max_components: 20 ", "max_components: 12 "), ("seed: 2025 ", "seed: 7    "))


def make_ph_pr(project: Path) -> None:
    """The model predicts pH instead of SOC: ``prepare.target`` SOC_target (%) -> pH_target (pH)."""
    edit_params(project, ("  target: SOC_target ", "  target: pH_target  "), ('  unit: "%" ', "  unit: pH  "))


def commit_main_results(root: Path) -> None:
    """Commit the project on main and run main's workflow on it: the real pipeline (--local) with
    --push, which publishes main's results under the commit in the DVC remote (nothing is committed)."""
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    assert main(["pipeline", "--local", "--base", "main", "--push", "--repo", str(root)]) == 0
