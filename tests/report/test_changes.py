"""The report's "What changed": params (dvc params diff), library batches, the chosen model, and code."""

from __future__ import annotations

import pytest

from soil_contracts.library import BatchState, LibrarySummary
from soilci.cli import main
from soilci.report.changes import (
    ABSENT,
    ParamChange,
    filled_by_branch,
    params_diff,
    replaced_base,
    value_conflicts,
)
from soilci.report.drift import DriftResult
from tests.report.results import git, make_batch_and_params_pr, run_report


def test_params_diff_lists_exactly_the_keys_whose_value_differs():
    base = "train:\n  seed: 1\n  pls: {max_components: 20, cv_folds: 10}\nevaluate: {rmse_max: null}\n"
    tree = "train:\n  seed: 1\n  pls: {max_components: 12, cv_folds: 10}\nevaluate: {rmse_max: 0.8}\nnew: {k: x}\n"
    assert params_diff(base, tree) == [
        ParamChange("evaluate.rmse_max", None, 0.8),
        ParamChange("new.k", ABSENT, "x"),
        ParamChange("train.pls.max_components", 20, 12),
    ]
    assert params_diff(base, base) == []


@pytest.mark.slow
def test_a_pr_adding_a_batch_and_changing_params_lists_both(published_project, prepared_data, capsys, monkeypatch):
    """Real runs: main's results, then a PR that adds batch lab-a (23 rows) and changes two params.

    The PR is test_baseline's PR A: after that test, its stages are restored from the shared DVC run-cache."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = published_project
    git(root, "checkout", "-qb", "lab-a")
    make_batch_and_params_pr(root, prepared_data)
    main(["pipeline", "--local", "--base", "main", "--repo", str(root)])
    capsys.readouterr()
    _, md, err = run_report(root, "main", capsys)
    details = md.split("#### What changed since `")[1].split("####")[0]
    assert "**Params**: 2 key(s) of `params.yaml` changed." in details, err
    assert "| `train.pls.max_components` | `20` | `12` |" in details
    assert "| `train.seed` | `2025` | `7` |" in details
    assert sum(line.startswith("| `") for line in details.split("**Data**")[0].splitlines()) == 2
    assert "| lab-a | added | 23 | 0 | 0 | 23 |" in details
    assert "| ssp460-campaign-1 | unchanged | 322 |" in details
    # Main's side comes from its published results record, model metadata included: no "n/a".
    lines = details.splitlines()
    components = next(line for line in lines if line.startswith("| `n_components` | `"))
    assert "n/a" not in components and "| training rows | 322 | 345 |" in details
    pipeline = next(line for line in lines if line.startswith("| pipeline (`train.family`) | "))
    assert "n/a" not in pipeline
    scores = next(line for line in lines if line.startswith("| inner-CV RMSE | "))
    assert "plain " in scores and scores.count("**") == 4  # both sides: every member scored, the chosen one bold
    rule = next(line for line in lines if line.startswith("| selection rule | "))
    assert rule.count("lowest if it beats plain by > 1.5 SE; 10-fold x 1; below 60 rows plain") == 2
    assert "**Code**: no file under services/, src/ or libs/ changed." in details


def library(*batches: tuple[str, str], duplicates=()) -> LibrarySummary:
    return LibrarySummary(target="SOC_target", unit="%", benchmark_sha256="0" * 64, benchmark_rows=92,
                          reference_rows=0, candidate_rows=322, training_rows=322,
                          batches=[BatchState(id=i, status=s) for i, s in batches], duplicates=list(duplicates))


def test_a_replaced_only_base_batch_is_named_and_a_base_without_batches_is_not():
    replaced = library(("ssp460-campaign-1", "replaced"))
    assert replaced_base(replaced) == "ssp460-campaign-1 replaced"
    assert replaced_base(library(("a", "replaced"), ("b", "removed"), ("c", "added"))) == "a replaced, b removed"
    assert replaced_base(library(("lab-a", "added"))) == ""  # the base really has no batch
    assert replaced_base(library(("a", "unchanged"), ("b", "replaced"))) == ""  # b is tested against a
    drift = DriftResult("no_reference", "", None, None, [], None, replaced_base=replaced_base(replaced))
    assert drift.word == "No unchanged reference"
    assert DriftResult("no_reference", "", None, None, [], None).word == "No reference yet"


def test_conflicting_lab_values_are_named_with_both_values():
    dup = {"sample": "b-1", "batch": "lab-b", "of": "a-1", "of_batch": "lab-a", "rms": 0.0, "kind": "conflict",
           "value": 2.1, "of_value": 1.6}
    filled = {**dup, "kind": "filled"}
    assert value_conflicts(library(("lab-a", "added"), duplicates=[dup, filled])) == "b-1 in lab-b (2.1) vs a-1 in lab-a (1.6)"
    assert value_conflicts(library(("lab-a", "added"), duplicates=[filled])) == ""
    assert value_conflicts(None) == ""


def test_lab_values_the_branch_brings_for_pending_samples_are_counted_with_their_batch():
    def filled(of_batch: str, sample: str = "a-1") -> dict:
        return {"sample": sample, "batch": "p1", "of": f"{sample}-values", "of_batch": of_batch, "rms": 0.0,
                "kind": "filled"}

    sent = library(("p1", "unchanged"), ("p2", "added"), duplicates=[filled("p2"), filled("p2", "a-2")])
    assert filled_by_branch(sent) == "2 pending samples got lab values from p2"
    one = library(("p1", "unchanged"), ("p2", "replaced"), duplicates=[filled("p2")])
    assert filled_by_branch(one) == "1 pending sample got its lab value from p2"
    # Filled at the base already (both batches unchanged): not this PR's doing.
    assert filled_by_branch(library(("p1", "unchanged"), ("p2", "unchanged"), duplicates=[filled("p2")])) == ""
    assert filled_by_branch(None) == ""
    drift = DriftResult("no_candidate", "", None, None, [], None, filled=filled_by_branch(sent))
    assert drift.word == "No new spectra"
    assert DriftResult("no_candidate", "", None, None, [], None).word == "No new samples"
