"""write_report through ``soilci report``: base vs PR metrics, the bootstrap finding, plots, badge and verdict."""

from __future__ import annotations

from tests.report.results import DRIFT_FAIL, make_repo, run_report


def test_better_model_shows_both_values_the_difference_a_real_improvement_and_plots(better_report, models):
    repo, sha, code, md = better_report
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
    for name in ("prediction_error.png", "prediction_error_base.png", "predicted_vs_observed.png",
                 "predicted_vs_observed_base.png"):
        assert (out / "report" / name).stat().st_size > 5000
        assert f"(report/{name})" in md
    assert "![PR predicted vs observed](report/predicted_vs_observed.png)" in md
    assert "![main predicted vs observed](report/predicted_vs_observed_base.png)" not in md  # base label here
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "Ready to merge" in html
    assert "alt='base predicted vs observed'" in html
    # Above the fold stays short: the details are collapsed.
    assert md.index("<details>") < 25 * 80 and len(md[: md.index("<details>")].splitlines()) <= 25


def test_worse_model_is_a_real_degradation_and_must_not_merge(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["good"], models["weak"])
    code, md, err = run_report(repo, sha, capsys)
    assert code == 1  # ExitCode.VERDICT, after the report is written
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
    assert (repo / "out" / "report" / "predicted_vs_observed.png").exists()
    assert not (repo / "out" / "report" / "predicted_vs_observed_base.png").exists()


def test_rmse_above_the_ceiling_blocks_the_merge(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"], params="evaluate:\n  rmse_max: 0.01\n")
    _, md, _ = run_report(repo, sha, capsys)
    assert "is above evaluate.rmse_max 0.01" in md and "🔴 Do not merge" in md


def test_absolute_quality_is_put_in_context_with_the_rpd_class_and_the_size_thresholds(better_report, models):
    repo, _, _, md = better_report
    rpd = models["good"][0]["rpd"]
    line = next(line for line in md.splitlines() if line.startswith("Absolute quality: "))
    assert f"**RPD {rpd:.2f} is " in line and "(Chang et al. 2001: > 2 accurate, 1.4–2 fair, < 1.4 poor)" in line
    assert "slightly = an RMSE change under 5% of the base RMSE, clearly = 5% or more." in line
    assert "Absolute quality: RPD" in (repo / "out" / "report.html").read_text()


def test_a_run_stopped_by_the_gate_shows_no_figures_of_the_previous_run(tmp_path, models, capsys):
    """An earlier run's metrics, predictions and model stay in the tree when the gate stops this one:
    none of them may appear as the PR's."""
    import json

    from tests.report.results import write_results

    repo, sha = make_repo(tmp_path, models["weak"], None, pr_drift=DRIFT_FAIL)
    write_results(repo, models["good"], DRIFT_FAIL)  # what the previous, successful run left behind
    (repo / "models" / "model").mkdir(parents=True)
    (repo / "models" / "model" / "soilci.json").write_text(json.dumps({"model": "pls", "n_train": 322}))
    code, md, _ = run_report(repo, sha, capsys)
    assert code == 1 and md.splitlines()[0].startswith("## 🔴 Do not merge")
    good = models["good"][0]
    for value in (good["rmse"], good["r2"], good["rpd"], good["mae"]):
        assert f"{value:.3f}" not in md
    rmse = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    assert rmse.split("|")[3].strip() == "n/a"
    assert "| training samples | 322 | n/a |" in md  # the benchmark counts: the base's only
    assert "**Model**: no model trained by this run (the run stopped before training)." in md
    assert "Absolute quality" not in md
    assert "Not evaluated: the run stopped before the benchmark evaluation." in md
    assert not (repo / "out" / "report" / "prediction_error.png").exists()
