"""soilci pipeline --local: the same stages and gate semantics, run here without Docker."""

from __future__ import annotations

import json
import os
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


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def test_local_run_stops_at_the_drift_gate_with_exit_1_registers_nothing_and_the_report_says_failed(
    project, prepared_data, capsys, monkeypatch
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")

    # The PR adds one batch: the fold-3 samples with a baseline offset of 5% of the mean signal.
    incoming = pd.read_parquet(prepared_data / "incoming.parquet")
    bands = [c for c in incoming.columns if c.startswith("wl_")]
    offset = 0.05 * float(np.mean(incoming[bands].to_numpy()))
    shifted = incoming.assign(**{b: incoming[b] + offset for b in bands}, sample_id=incoming.sample_id + "-b")
    add_batch(root, "lab-b", shifted)

    assert main(["pipeline", "--local", "--register", "--base", "main", "--repo", str(root)]) == 1
    run = RunRecord.load(next((root / "runs").glob("*/run.json")))
    assert run.mode == "local" and run.stopped_at == "drift"
    assert [s.outcome for s in run.stages] == ["ran", "failed", "not run", "not run"]
    assert "soil-drift check" in (root / run.stages[1].log).read_text()
    verdict = json.loads((root / "reports" / "drift.json").read_text())
    assert verdict["status"] == "fail"
    assert (verdict["reference"]["rows"], verdict["candidate"]["rows"]) == (322, 46)  # only the PR's batch is new
    assert verdict["summary"] in capsys.readouterr().err  # the gate's reason, from the tail of its log
    assert not (root / "models" / "model").exists()  # nothing was trained on the drifted batch
    assert not (root / "runs" / "registered.json").exists()  # nor registered
    assert not (root / "report.md").exists()  # the report is `soilci report`'s, run next as in CI

    assert main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root)]) == 1  # red: the check fails
    md = (root / "report.md").read_text()
    assert "**Data Drift Check: Failed**" in md and "🔴 Do not merge" in md
    assert "No base metrics at this revision" not in md  # not evaluated, which says more
    assert "Not evaluated: the run stopped before the benchmark evaluation." in md
