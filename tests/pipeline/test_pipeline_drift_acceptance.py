"""A batch's recorded drift acceptance: real pipeline runs on real git branches, then the report.

The gate warns instead of failing only when every new batch that drifts carries an acceptance. The first
run is also `soilci pipeline --local --register` stopped at the drift gate: what it records, trains and
registers (nothing), and the red report after it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soil_contracts.records import RunRecord
from soilci.cli import main
from tests.support import add_batch

pytestmark = pytest.mark.slow
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
REASON, BY = "new detector; offset checked against the lab's reference soils", "ana.lead@example.org"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def with_offset(frame: pd.DataFrame, share: float, suffix: str) -> pd.DataFrame:
    """The batch with a flat baseline offset of ``share`` of its mean signal, under new sample ids."""
    bands = [c for c in frame.columns if c.startswith("wl_")]
    shift = share * float(np.mean(frame[bands].to_numpy()))
    return frame.assign(**{b: frame[b] + shift for b in bands}, sample_id=frame.sample_id + suffix)


def report(root: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root / "out")])
    return code, (root / "out" / "report.md").read_text()


def test_an_accepted_offset_batch_warns_and_a_drifting_batch_without_acceptance_still_fails(
        project, prepared_data, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: the demo library")
    git(root, "checkout", "-qb", "new-instrument")
    fold3 = pd.read_parquet(prepared_data / "incoming.parquet")
    add_batch(root, "lab-o", with_offset(fold3, 0.04, "-o"))
    # The lead's decision, written into batch.yaml (reviewed in the PR) for this batch's content.
    assert main(["library", "accept", "lab-o", "--reason", REASON, "--by", BY, "--repo", str(root)]) == 0
    add_batch(root, "lab-x", with_offset(fold3, 0.07, "-x"))  # drifts too, and nobody accepted it

    # 1. The accepted batch beside an unaccepted drifting one: the gate still fails. --local runs the stages
    # here; stopped at the gate, the run trains nothing and, asked to register, registers nothing.
    assert main(["pipeline", "--local", "--register", "--base", "main", "--repo", str(root)]) == 1
    run = RunRecord.load(next((root / "runs").glob("*/run.json")))
    assert run.mode == "local" and run.stopped_at == "drift"
    assert [s.outcome for s in run.stages] == ["ran", "failed", "not run", "not run"]
    assert "soil-drift check" in (root / run.stages[1].log).read_text()
    drift = json.loads((root / "reports" / "drift.json").read_text())
    assert drift["status"] == "fail"
    assert (drift["reference"]["rows"], drift["candidate"]["rows"]) == (322, 2 * len(fold3))  # the PR's batches
    assert drift["summary"] in capsys.readouterr().err  # the gate's reason, from the tail of its log
    assert drift["acceptance"]["accepted"] == [{"batch": "lab-o", "rows": len(fold3), "reason": REASON, "by": BY}]
    assert drift["acceptance"]["others"]["batches"] == ["lab-x"] and drift["acceptance"]["others"]["result"] == "drift"
    assert not (root / "models" / "model").exists()  # nothing was trained on the drifted batches
    assert not (root / "runs" / "registered.json").exists()  # nor registered
    assert not (root / "report.md").exists()  # the report is `soilci report`'s, run next as in CI
    code, md = report(root, capsys)
    assert code == 1
    assert md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert "**Data Drift Check: Failed**" in md
    assert "No base metrics at this revision" not in md  # not evaluated, which says more
    assert "Not evaluated: the run stopped before the benchmark evaluation." in md
    assert "batches without a drift acceptance (lab-x) differ from the reference set" in md
    assert f"| lab-o | {len(fold3)} | {BY} | {REASON} |" in md  # who accepted what, and why

    # 2. The unaccepted batch dropped, a clean one added instead: the accepted drift warns; the run goes on.
    shutil.rmtree(root / "library" / "batches" / "lab-x")
    add_batch(root, "lab-clean", fold3)
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 0
    drift = json.loads((root / "reports" / "drift.json").read_text())
    assert drift["status"] == "warn" and drift["drift_detected"] is True
    assert drift["acceptance"]["others"] == {"batches": ["lab-clean"], "rows": len(fold3), "result": "no drift",
                                             "summary": drift["acceptance"]["others"]["summary"]}
    library = json.loads((root / "data" / "library.json").read_text())
    assert {b["id"]: b["accepted_by"] for b in library["batches"]}["lab-o"] == BY
    assert (root / "metrics" / "metrics.json").exists()  # trained and evaluated after the warning
    code, md = report(root, capsys)
    assert code == 0
    lines = md.splitlines()
    assert lines[0].startswith("## 🟡 Needs review")
    assert lines[2] == (f"Drift accepted for batch lab-o ({len(fold3)} rows), accepted by {BY}: \"{REASON}\" "
                        "(batch.yaml drift_acceptance); the other new batches, lab-clean (46 rows), do not drift "
                        "on their own: check the accepted batch before merging.")
    assert "⚠️ **Data Drift Check: Warning**" in md
    assert "| lab-o | added, drift accepted |" in md
    assert "The other new batches (lab-clean, 46 rows) tested on their own: **no drift**." in md

    # 3. The acceptance withdrawn: the gate fails again, and the report shows none of run 2's figures.
    rmse = json.loads((root / "metrics" / "metrics.json").read_text())["rmse"]
    assert main(["library", "accept", "lab-o", "--withdraw", "--repo", str(root)]) == 0
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 1
    assert (root / "metrics" / "metrics.json").exists()  # run 2's file is still in the tree...
    code, md = report(root, capsys)
    assert code == 1 and md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert f"{rmse:.3f}" not in md  # ...and none of its numbers is shown as this run's
    assert "Not evaluated: the run stopped before the benchmark evaluation." in md
    assert "**Model**: no model trained by this run (the run stopped before training)." in md
