"""Batch pull requests in sequence: each PR's drift candidate is exactly what it adds, and batches accumulate.

Real git branches and merges, the real pipeline (--local), real LimeSoDa spectra. Where a step's checks are
on prepare's and drift's outputs only, it runs those two stages with `dvc repro drift` (``repro``) instead of
the whole pipeline: training and evaluating there would add 13 s of CPU and no check; where they are on
prepare's alone, `dvc repro prepare`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from soil_contracts.library import LibrarySummary
from soilci.cli import main
from soilci.report.changes import filled_by_branch
from tests.support import add_batch, reproduce

pytestmark = pytest.mark.slow
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def repro(root: Path, base: str, monkeypatch, until: str = "drift") -> None:
    """The pipeline up to ``until`` (the drift gate, or prepare), as a DVC user runs it: the base's library
    listing (`soilci library base`, what `soilci pipeline --base` writes first), then `dvc repro <until>`
    (dvc.yaml's own commands of the stages up to it), in this process."""
    assert main(["library", "base", "--base", base, "--repo", str(root)]) == 0
    bin_dir = Path(sys.executable).parent  # soil-trainer and soil-drift, the stages' programs
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    # Also the new batch's .dvc file (its spectra), as a data source.
    stages = ["prepare", "drift"]
    assert reproduce(root, until) == stages[:stages.index(until) + 1]


def summary(root: Path) -> dict:
    return json.loads((root / "data" / "library.json").read_text())


def test_two_batch_prs_in_sequence_accumulate_and_each_is_the_only_candidate(project, prepared_data, monkeypatch):
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    fold3 = pd.read_parquet(prepared_data / "incoming.parquet")
    first, second = fold3.iloc[:23].copy(), fold3.iloc[23:].copy()
    second.loc[second.index[:4], "SOC_target"] = float("nan")  # four samples still wait for their lab value

    # PR 1 adds lab-a; merged into main.
    git(root, "checkout", "-qb", "pr-1")
    add_batch(root, "lab-a", first)
    repro(root, "main", monkeypatch, until="prepare")  # the checks below are on prepare's outputs and git's view
    s1 = summary(root)
    assert {b["id"]: b["status"] for b in s1["batches"]} == {"ssp460-campaign-1": "unchanged", "lab-a": "added"}
    assert (s1["reference_rows"], s1["candidate_rows"], s1["training_rows"]) == (322, 23, 345)
    git(root, "add", "library")  # the batch, by its path, as docs/LIBRARY.md does it
    git(root, "commit", "-qm", "Batch lab-a")
    untracked = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    assert untracked == ["?? dvc.lock"]
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "pr-1", "-m", "Merge pr-1")

    # PR 2, from the new main, adds lab-b: the candidate is lab-b alone, training keeps lab-a.
    git(root, "checkout", "-qb", "pr-2")
    add_batch(root, "lab-b", second)
    repro(root, "main", monkeypatch)  # the checks below are on prepare's and drift's outputs only
    s2 = summary(root)
    assert {b["id"]: b["status"] for b in s2["batches"]} == {
        "ssp460-campaign-1": "unchanged", "lab-a": "unchanged", "lab-b": "added"}
    assert (s2["reference_rows"], s2["candidate_rows"]) == (345, 23)
    assert s2["training_rows"] == 322 + 23 + 19  # lab-b's pending rows are not trained on...
    assert {b["id"]: b["pending"] for b in s2["batches"]}["lab-b"] == 4  # ...and are counted
    drift = json.loads((root / "reports" / "drift.json").read_text())
    assert (drift["reference"]["rows"], drift["candidate"]["rows"]) == (345, 23)
    assert drift["candidate"]["missing"] == {"SOC_target": 4}
    training = pd.read_parquet(root / "data" / "training.parquet")
    assert set(training["batch"]) == {"ssp460-campaign-1", "lab-a", "lab-b"}


def test_removing_a_batch_is_explicit_in_the_data_diff(project, prepared_data, monkeypatch):
    import shutil

    root = project
    add_batch(root, "lab-a", pd.read_parquet(prepared_data / "incoming.parquet"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main with lab-a")
    git(root, "checkout", "-qb", "drop-lab-a")
    shutil.rmtree(root / "library" / "batches" / "lab-a")
    assert main(["library", "base", "--base", "main", "--repo", str(root)]) == 0
    from soil_trainer.cli import main as trainer

    assert trainer(["prepare", "--params", str(root / "params.yaml"), "--out-dir", str(root / "data")]) == 0
    assert {b["id"]: b["status"] for b in summary(root)["batches"]} == {
        "ssp460-campaign-1": "unchanged", "lab-a": "removed"}
    assert summary(root)["candidate_rows"] == 0


def import_fold3(root: Path, batch_id: str) -> None:
    """SSP.460's fold 3 (46 samples) imported as a lab would, with ``soilci library import``."""
    assert main(["library", "import", "limesoda:SSP.460", "--folds", "3", "--batch", batch_id,
                 "--instrument", "vis-NIR spectrometer", "--lab", "test lab", "--date", "2026-11",
                 "--scale", "reflectance_percent", "--target", "SOC_target=%", "--repo", str(root)]) == 0


def test_the_same_samples_imported_as_two_batches_are_tested_and_trained_on_as_one(project, capsys, monkeypatch):
    """Fold 3 imported twice used to double the drift candidate (92 rows) and turn the pass into a fail."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    git(root, "checkout", "-qb", "pr")
    import_fold3(root, "lab-a")
    repro(root, "main", monkeypatch)  # the whole pipeline runs once, below, before the report
    once = json.loads((root / "reports" / "drift.json").read_text())
    trained_once = pd.read_parquet(root / "data" / "training.parquet")
    assert once["status"] == "pass" and once["candidate"]["rows"] == 46

    import_fold3(root, "lab-b")  # the same 46 samples again, as a second batch
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 0
    # dvc.lock is left untracked (docs/SOP.md), and the run says so: a new user saw it in git status unexplained.
    assert "dvc.lock is untracked on purpose: leave it out of commits" in capsys.readouterr().err
    # Every other file the whole run wrote (data/, reports/, models/, metrics/, runs/, .soilci/) is git-ignored.
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert [line for line in status if not line[3:].startswith("library/")] == ["?? dvc.lock"]
    twice = json.loads((root / "reports" / "drift.json").read_text())
    assert (twice["status"], twice["summary"]) == (once["status"], once["summary"])
    assert (twice["reference"]["rows"], twice["candidate"]["rows"]) == (322, 46)
    pd.testing.assert_frame_equal(pd.read_parquet(root / "data" / "training.parquet"), trained_once)
    s = summary(root)
    assert (s["reference_rows"], s["candidate_rows"], s["training_rows"]) == (322, 46, 368)
    assert {b["id"]: (b["rows"], b["duplicates"], b["trained"]) for b in s["batches"]} == {
        "ssp460-campaign-1": (322, 0, 322), "lab-a": (46, 0, 46), "lab-b": (46, 46, 0)}

    capsys.readouterr()
    main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root / "out")])
    md = (root / "out" / "report.md").read_text()
    assert ("**Data**: 368 training rows = 322 reference + 46 new; 46 duplicate rows dropped (the spectrum of a "
            "sample already in the library: tested and trained on once); benchmark 92 rows") in md


def test_lab_values_sent_later_as_a_new_batch_are_trained_on_and_the_counts_add_up(project, prepared_data,
                                                                                   capsys, monkeypatch):
    """The trial's input: p1 (merged) holds fold 3 without lab values, p2 the same spectra with them. p2's
    values used to be dropped as duplicates of p1 ("46 duplicates, 0 trained") under a green report."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    fold3 = pd.read_parquet(prepared_data / "incoming.parquet")
    add_batch(root, "p1", fold3.assign(SOC_target=float("nan")))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library and p1, waiting for its lab values")
    git(root, "checkout", "-qb", "p2")
    add_batch(root, "p2", fold3.assign(sample_id=fold3.sample_id + "-values"))
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 0
    s = summary(root)
    assert {b["id"]: (b["status"], b["rows"], b["pending"], b["duplicates"], b["trained"], b["filled"])
            for b in s["batches"]} == {"ssp460-campaign-1": ("unchanged", 322, 0, 0, 322, 0),
                                       "p1": ("unchanged", 46, 0, 46, 0, 46), "p2": ("added", 46, 0, 0, 46, 0)}
    assert (s["reference_rows"], s["candidate_rows"], s["training_rows"]) == (368, 0, 368)
    training = pd.read_parquet(root / "data" / "training.parquet")
    assert training.groupby("batch").size().to_dict() == {"p2": 46, "ssp460-campaign-1": 322}
    assert training.SOC_target.notna().all()

    capsys.readouterr()
    main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root / "out")])
    md = (root / "out" / "report.md").read_text()
    assert "| p2 | added | 46 | 0 | 0 | 46 |" in md and "| p1 | unchanged | 46 | 0 | 46 | 0 |" in md
    assert ("**Data**: 368 training rows = 368 reference + 0 new; 46 duplicate rows dropped (the spectrum of a "
            "sample already in the library: tested and trained on once), 46 of them pending copies whose lab "
            "value another copy brings (that copy is trained on)") in md
    # A PR that only sends lab values is not "no new samples" (the trial's report said so under 🟢).
    assert filled_by_branch(LibrarySummary.load(root / "data" / "library.json")) == (
        "46 pending samples got lab values from p2")
    assert "**Data Drift Check: No new spectra**" in md and "No new samples" not in md
    assert ("No new spectra relative to the base, so nothing to test for drift; 46 pending samples got lab values "
            "from p2, which are trained on from now on.") in md


def test_replacing_the_bases_only_batch_is_reported_as_such(project, capsys, monkeypatch, tmp_path):
    """The trial's input: ssp460-campaign-1 re-imported with gain 0.98 and a +0.6 offset (--replace). The
    report said "the base has no library batches yet" (badge "No reference yet"), which was false."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    git(root, "checkout", "-qb", "recalibrated")
    rows = pd.read_parquet(root / "library" / "batches" / "ssp460-campaign-1" / "spectra.parquet")
    bands = [c for c in rows.columns if c.startswith("wl_")]
    rows[bands] = rows[bands] * 0.98 + 0.6
    export = tmp_path / "campaign-1-recalibrated.csv"
    rows[["sample_id", "SOC_target", *bands]].to_csv(export, index=False)
    assert main(["library", "import", str(export), "--batch", "ssp460-campaign-1", "--replace",
                 "--instrument", "vis-NIR spectrometer", "--lab", "test lab", "--date", "2026-11",
                 "--scale", "reflectance_percent", "--target", "SOC_target=%", "--repo", str(root)]) == 0
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 0
    s = summary(root)
    assert {b["id"]: b["status"] for b in s["batches"]} == {"ssp460-campaign-1": "replaced"}
    assert (s["reference_rows"], s["candidate_rows"]) == (0, 322)
    assert json.loads((root / "reports" / "drift.json").read_text())["status"] == "no_reference"

    capsys.readouterr()
    main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root / "out")])
    md = (root / "out" / "report.md").read_text()
    assert "no library batches yet" not in md and "No reference yet" not in md
    assert "Data Drift Check: No unchanged reference" in md
    assert ("the branch replaced or removed every library batch of the base (ssp460-campaign-1 replaced), so no "
            "unchanged batch is left to compare the new samples with") in md.lower()
