"""The check follows the verdict: 🔴 exits 1 after writing the report, 🟡 passes with a visible notice."""

from __future__ import annotations

import io

from soil_contracts.errors import ExitCode
from soilci.report.status import announce, verdict_exit_code
from soilci.report.verdict import BLOCK, READY, REVIEW, Verdict
from tests.report.results import make_repo, run_report


def test_do_not_merge_exits_1_after_both_pages_are_written_and_exit_zero_keeps_0(tmp_path, models, capsys,
                                                                                   monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    repo, sha = make_repo(tmp_path, models["good"], models["weak"])
    code, md, _ = run_report(repo, sha, capsys)
    assert code == ExitCode.VERDICT == 1
    assert md.startswith("## 🔴 Do not merge") and (repo / "out" / "report.html").exists()
    code, md, _ = run_report(repo, sha, capsys, "--exit-zero")
    assert code == 0 and md.startswith("## 🔴 Do not merge")


def test_needs_review_exits_0_with_a_workflow_warning_and_a_job_summary(tmp_path, models, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    repo, sha = make_repo(tmp_path, None, models["good"])  # no base metrics: 🟡
    out = repo / "out"
    from soilci.cli import main

    code = main(["report", "--base", sha, "--repo", str(repo), "--out-dir", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    warning = next(line for line in stdout.splitlines() if line.startswith("::warning "))
    assert warning.startswith("::warning title=Needs review::RMSE ")
    assert "no base metrics to compare with (first run)" in warning
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "### 🟡 Needs review: RMSE " in text


def test_ready_to_merge_exits_0_without_annotation():
    stream = io.StringIO()
    announce(Verdict(READY, "fine"), "RMSE 1 → 0.9", stream=stream, env={})
    assert stream.getvalue() == ""
    assert verdict_exit_code(Verdict(READY, "fine")) == verdict_exit_code(Verdict(REVIEW, "look")) == 0
    assert verdict_exit_code(Verdict(BLOCK, "no")) == 1 and verdict_exit_code(Verdict(BLOCK, "no"), exit_zero=True) == 0


def test_annotation_escapes_workflow_command_characters():
    stream = io.StringIO()
    announce(Verdict(REVIEW, "50% worse\nsee: details, below"), "RMSE", stream=stream, env={"GITHUB_ACTIONS": "true"})
    assert stream.getvalue() == "::warning title=Needs review::RMSE: 50%25 worse%0Asee: details, below\n"


def test_outside_github_actions_the_annotation_is_plain_text():
    """The new-user trial: a local `soilci report` printed GitHub's escaping, "(+0.7%25)"."""
    stream = io.StringIO()
    announce(Verdict(BLOCK, "RMSE +0.7% worse"), "RMSE 1 → 1.007", stream=stream, env={})
    assert stream.getvalue() == "error: Do not merge: RMSE 1 → 1.007: RMSE +0.7% worse\n"
