"""Reading both sides: a missing base revision, no git repository or a corrupt result file exit 2."""

from __future__ import annotations

from tests.report.results import make_repo, run_report


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


def test_predictions_with_the_other_residual_sign_are_refused_naming_the_file(tmp_path, models, capsys):
    """One sign everywhere: residual = predicted - observed, as bias, the plots and the report use it."""
    metrics, preds = models["good"]
    flipped = preds.assign(residual=preds["observed"] - preds["predicted"])
    repo, sha = make_repo(tmp_path, models["weak"], (metrics, flipped))
    code, _, err = run_report(repo, sha, capsys)
    assert code == 2 and "predictions.csv: column residual is not predicted - observed" in err
