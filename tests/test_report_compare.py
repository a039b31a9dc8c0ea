"""soilci report: base vs PR metrics, a paired bootstrap, plots, the drift badge and the SOP verdict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soilci.cli import main
from soilci.report.build import (
    BLOCK,
    READY,
    REVIEW,
    RmseDifference,
    bootstrap_rmse_difference,
    decide,
    parse_predictions,
)

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


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
    }
    preds = pd.DataFrame({"sample_id": bench["sample_id"], "observed": observed, "predicted": predicted,
                          "residual": observed - predicted})
    return metrics, preds


@pytest.fixture(scope="module")
def models(prepared_data: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    return {"weak": fit_predict(prepared_data, 1), "good": fit_predict(prepared_data, 8)}


DRIFT_PASS = {"status": "pass", "drift_detected": False, "method": "pca-ks", "alpha": 0.05,
              "summary": "No component of the incoming spectra differs from the reference.", "top_drifted": []}
DRIFT_FAIL = {**DRIFT_PASS, "status": "fail", "drift_detected": True,
              "summary": "4 of 10 components differ.",
              "top_drifted": [{"name": "PC1", "kind": "component", "statistic": 0.61, "p_value": 1e-9},
                              {"name": "1900-2000 nm", "kind": "region", "statistic": 0.4, "p_value": 2e-4}]}


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


def run_report(repo: Path, base: str, capsys) -> tuple[int, str, str]:
    out = repo / "out"
    code = main(["report", "--base", base, "--repo", str(repo), "--out-dir", str(out)])
    err = capsys.readouterr().err
    md = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    return code, md, err


def test_better_model_shows_both_values_the_difference_a_real_improvement_and_plots(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    code, md, _ = run_report(repo, sha, capsys)
    assert code == 0
    base_rmse, pr_rmse = models["weak"][0]["rmse"], models["good"][0]["rmse"]
    assert pr_rmse < base_rmse
    row = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    assert f"{base_rmse:.3f}" in row and f"{pr_rmse:.3f}" in row and f"{pr_rmse - base_rmse:+.3f}" in row
    assert "✅ better" in row
    assert "a real improvement" in md
    assert md.splitlines()[0].startswith("## 🟢 Ready to merge")
    assert "Data Drift Check: Passed" in md
    assert f"{sha[:7]} → " in md  # code versions compared
    assert "(changed)" in md  # data version differs
    out = repo / "out"
    for name in ("prediction_error.png", "prediction_error_base.png"):
        assert (out / "report" / name).stat().st_size > 5000
        assert f"(report/{name})" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Ready to merge" in html
    # Above the fold stays short: the details are collapsed.
    assert md.index("<details>") < 25 * 80 and len(md[: md.index("<details>")].splitlines()) <= 25


def test_worse_model_is_a_real_degradation_and_must_not_merge(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["good"], models["weak"])
    code, md, err = run_report(repo, sha, capsys)
    assert code == 0
    assert "a real degradation" in md and "🔻 worse" in md
    assert md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert "Do not merge" in err


def test_same_predictions_are_no_change(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["good"], models["good"])
    _, md, _ = run_report(repo, sha, capsys)
    assert "no change: identical predictions" in md and "95% CI [+0.000, +0.000]" in md
    assert "🟢 Ready to merge" in md


def test_failed_drift_gate_shows_the_failed_badge_the_top_drifted_features_and_blocks(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"], pr_drift=DRIFT_FAIL)
    _, md, _ = run_report(repo, sha, capsys)
    assert "❌ **Data Drift Check: Failed**" in md
    assert "Top drifted: PC1 (p=1e-09), 1900-2000 nm (p=0.0002)" in md
    assert md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert "drift gate failed" in md


def test_first_pr_without_base_metrics_says_so_instead_of_failing(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, None, models["good"])
    code, md, _ = run_report(repo, sha, capsys)
    assert code == 0
    assert "No base metrics at this revision (a first PR)" in md
    assert "🟡 Needs review" in md
    assert (repo / "out" / "report" / "prediction_error.png").exists()
    assert not (repo / "out" / "report" / "prediction_error_base.png").exists()


def test_rmse_above_the_ceiling_blocks_the_merge(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"], params="evaluate:\n  rmse_max: 0.01\n")
    _, md, _ = run_report(repo, sha, capsys)
    assert "above the ceiling 0.01" in md and "🔴 Do not merge" in md


def test_base_revision_that_does_not_exist_exits_2_naming_it(tmp_path, models, capsys):
    repo, _ = make_repo(tmp_path, models["weak"], models["good"])
    code, md, err = run_report(repo, "no-such-branch", capsys)
    assert code == 2
    assert "base revision 'no-such-branch' does not exist" in err
    assert md == ""


def test_report_outside_a_git_repository_exits_2(tmp_path, capsys):
    code, _, err = run_report(tmp_path, "main", capsys)
    assert code == 2 and "not a git repository" in err


def test_corrupt_pr_metrics_exit_2_naming_the_file(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    (repo / "metrics" / "metrics.json").write_text("{not json")
    code, _, err = run_report(repo, sha, capsys)
    assert code == 2 and "metrics.json: not valid JSON" in err


def test_bootstrap_interval_excludes_zero_only_for_a_real_difference(models):
    weak, good = parse_predictions(models["weak"][1].to_csv(index=False), "weak"), \
        parse_predictions(models["good"][1].to_csv(index=False), "good")
    better = bootstrap_rmse_difference(weak, good)
    assert better.n_pairs == len(good) and better.high < 0 and better.finding == "improvement"
    assert better.low < better.delta < better.high
    # The same comparison twice gives the same interval (fixed seed).
    assert bootstrap_rmse_difference(weak, good) == better
    # Tiny noise on the same predictions is not a real change.
    rng = np.random.default_rng(1)
    jitter = good.assign(error=good["error"] + rng.normal(0, 1e-3, len(good)))
    assert bootstrap_rmse_difference(good, jitter).finding == "noise"
    # Pairs are joined on sample_id, whatever the row order.
    assert bootstrap_rmse_difference(weak, good.iloc[::-1]).delta == pytest.approx(better.delta)


def diff(finding: str, delta: float = -0.1) -> RmseDifference:
    low, high = {"improvement": (-0.2, -0.01), "degradation": (0.01, 0.2), "noise": (-0.05, 0.05)}[finding]
    return RmseDifference(n_pairs=92, rmse_base=1.0, rmse_pr=1.0 + delta, low=low, high=high, resamples=2000,
                          seed=1, confidence=0.95)


@pytest.mark.parametrize(
    ("kwargs", "level", "words"),
    [
        ({"drift_status": "fail"}, BLOCK, "drift gate failed"),
        ({"stale": ["train", "evaluate"]}, BLOCK, "not up to date: train, evaluate"),
        ({"pr_metrics": None}, BLOCK, "did not finish"),
        ({"rmse_max": 0.5}, BLOCK, "above the ceiling"),
        ({"difference": diff("degradation", 0.1)}, BLOCK, "difference is real"),
        ({"drift_status": "warn"}, REVIEW, "drift gate warned"),
        ({"drift_status": None}, REVIEW, "did not run"),
        ({"base_metrics": None}, REVIEW, "first run"),
        ({"difference": None}, REVIEW, "too few benchmark samples"),
        ({"difference": diff("noise", 0.02)}, REVIEW, "slightly worse"),
        ({"difference": diff("noise", -0.02)}, READY, "no worse"),
        ({}, READY, "improvement is real"),
    ],
)
def test_verdict_follows_the_sop_rules_in_order(kwargs, level, words):
    args = {"drift_status": "pass", "pr_metrics": {"rmse": 0.9}, "base_metrics": {"rmse": 1.0},
            "difference": diff("improvement"), "stale": [], "rmse_max": None, **kwargs}
    verdict = decide(**args)
    assert verdict.level == level and words in verdict.reason


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no headless Chromium here")
def test_report_html_renders_with_verdict_badge_and_both_plots_above_the_fold(tmp_path, models, capsys):
    """Render report.html at 1280x900 and look for the verdict colour, the badge and both histograms."""
    from matplotlib.image import imread

    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    run_report(repo, sha, capsys)
    png = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,900",
         (repo / "out" / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = (imread(png)[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (900, 1280)

    def rows_with(rgb: tuple[int, int, int]) -> np.ndarray:
        return np.nonzero(np.all(np.abs(pixels - rgb) <= 6, axis=-1).any(axis=1))[0]

    verdict, badge = rows_with((0x1A, 0x7F, 0x37)), rows_with((0x55, 0x55, 0x55))  # green text, badge key
    pr_bars, base_bars = rows_with((0x1F, 0x6F, 0xEB)), rows_with((0x8B, 0x94, 0x9E))
    assert verdict.size and verdict.min() < 80  # the verdict is the first thing on the page
    assert badge.size and badge.min() < 160
    assert pr_bars.size > 50 and base_bars.size > 50 and max(pr_bars.max(), base_bars.max()) < 900
