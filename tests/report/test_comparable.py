"""Comparability first: base and PR compare only when target, unit and benchmark content agree."""

from __future__ import annotations

import json

import pytest

from soilci.cli import main
from soilci.report.comparable import Identity, incomparability, parse_identity
from tests.report.results import git, make_ph_pr, make_repo, run_report

SOC = Identity("SOC_target", "%", "a" * 64)


def test_incomparability_names_what_changed():
    assert incomparability(SOC, SOC, base_has_metrics=True) is None
    assert incomparability(None, None, base_has_metrics=False) is None  # a first run: nothing to compare
    assert incomparability(None, SOC, base_has_metrics=True) == "the base predates target/benchmark tracking"
    ph = Identity("pH_target", "pH", "b" * 64)
    assert incomparability(SOC, ph, base_has_metrics=True) == "target changed: SOC_target (%) → pH_target (pH)"
    other = Identity("SOC_target", "%", "c" * 64)
    assert incomparability(SOC, other, base_has_metrics=True) == "benchmark set changed: sha256 aaaaaaaa → cccccccc"
    assert parse_identity('{"rmse": 1}') is None and parse_identity(json.dumps(
        {"target": "SOC_target", "unit": "%", "benchmark_sha256": "a" * 64})) == SOC


def test_base_metrics_without_identity_are_not_comparable_and_never_green(tmp_path, models, capsys):
    old = ({k: v for k, v in models["weak"][0].items() if k not in {"target", "unit", "benchmark_sha256"}},
           models["weak"][1])
    repo, sha = make_repo(tmp_path, old, models["good"])
    code, md, _ = run_report(repo, sha, capsys)
    assert code == 0
    assert md.splitlines()[0] == "## 🟣 Not comparable: the base predates target/benchmark tracking"
    assert "Change" not in md.split("<details>")[0] and "Paired bootstrap" not in md
    assert not (repo / "out" / "report" / "prediction_error_base.png").exists()


@pytest.mark.slow
def test_a_pr_that_changes_the_target_is_not_comparable(published_project, capsys, monkeypatch):
    """Real runs: main's SOC model, then a PR that predicts pH on the same benchmark samples.

    The PR is test_baseline's PR B: after that test, its stages are restored from the shared DVC run-cache."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = published_project
    git(root, "checkout", "-qb", "ph")
    make_ph_pr(root)
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 0
    capsys.readouterr()
    code, md, err = run_report(root, "main", capsys)
    assert code == 0, err
    head = md.split("<details>")[0]
    assert head.splitlines()[0] == "## 🟣 Not comparable: target changed: SOC_target (%) → pH_target (pH)"
    assert "🟢" not in head and "Change" not in head and "CI [" not in head
    assert "| main `" in head and " SOC_target (%) | PR `" in head and " pH_target (pH) |" in head
    assert "Paired bootstrap" not in md
    html = (root / "out" / "report.html").read_text()
    assert "Not comparable" in html and "var(--not_comparable)" in html
