"""What the report takes from the tree: only this tree's run, and a gate's outputs when its run stopped there."""

from __future__ import annotations

import json
import re
from pathlib import Path

from soil_contracts.records import RunRecord
from soilci.cli import main
from soilci.report.blocks import fmt_num
from tests.report.results import git


def _set(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _report(root: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    # report/ is git-ignored: a report folder git does not ignore would make the tree differ from HEAD.
    code = main(["report", "--base", "main", "--repo", str(root), "--out-dir", str(root / "report")])
    return code, (root / "report" / "report.md").read_text()


def test_a_run_stopped_by_evaluates_ceiling_is_reported_with_its_rmse(published_project, capsys, monkeypatch):
    """The new-user trial: rmse_max 0.62 under an RMSE of 0.643 gave "benchmark not evaluated" and n/a in
    the table, because the failed evaluate counted as stale; SOP rule 2 could never fire."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    root = published_project
    _set(root / "params.yaml", "  rmse_max: null", "  rmse_max: 0.01")  # below any real RMSE
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 1
    assert "benchmark RMSE ceiling failed (exit 1)" in capsys.readouterr().err
    run = RunRecord.load(max((root / "runs").glob("*/run.json")))
    assert run.stopped_at == "evaluate" and run.exit_code == 1
    rmse = json.loads((root / "metrics" / "metrics.json").read_text())["rmse"]  # kept, as drift.json is

    code, md = _report(root, capsys)
    assert code == 1
    assert "🔴 Do not merge" in md and f"Benchmark RMSE {rmse:.3f} is above evaluate.rmse_max 0.01." in md
    assert f"→ {fmt_num(rmse)}" in md  # the headline's and the table's numbers, not n/a
    assert "benchmark not evaluated" not in md and "no current benchmark metrics" not in md


def test_another_branchs_failed_run_is_not_quoted_on_this_one(published_project, capsys, monkeypatch):
    """The new-user trial: on branch B, without a run, the reason quoted branch A's failed stage."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    root = published_project
    git(root, "checkout", "-qb", "branch-a")
    _set(root / "params.yaml", "  min_rows: 20", "  min_rows: 100000")  # more rows than the library has
    git(root, "commit", "-qm", "A: a drift.min_rows the data cannot meet", "params.yaml")
    capsys.readouterr()
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(root)]) == 2
    err = capsys.readouterr().err
    # A clean refusal of bad input is not a crash (the trial's "drift crashed with exit code 2").
    assert re.search(r"drift +refused its input \(exit 2: bad input or params\)", err) and "crashed" not in err
    assert "stage 'drift' failed with exit code 2: it refused its input" in err
    code, md = _report(root, capsys)
    assert code == 1 and "drift (exit 2): " in md and "drift.min_rows" in md  # branch A's own report says why

    git(root, "checkout", "-q", "main")
    git(root, "checkout", "-qb", "branch-b")
    _set(root / "params.yaml", "  seed: 2025", "  seed: 7")
    git(root, "commit", "-qm", "B: another seed", "params.yaml")
    sha = git(root, "rev-parse", "HEAD")
    code, md = _report(root, capsys)
    assert code == 1 and "drift.min_rows" not in md and "(exit 2)" not in md
    assert f"The pipeline has not been run for this commit ({sha[:7]}), so there are no current" in md
    assert "Data Drift Check: Not run" in md  # drift.json is gone with A's run: nothing checked B


def test_a_stale_prepare_makes_every_later_stage_stale_and_the_old_drift_verdict_is_not_quoted(published_project,
                                                                                               capsys):
    """The new-user trial: after a batch changed and before a rerun, DVC called only prepare stale (drift's
    inputs on disk were the old run's), so the report showed the old data's "Data Drift Check: Passed"."""
    from soilci.report.runs import stale_stages

    root = published_project
    assert stale_stages(root) == []
    batch = root / "library" / "batches" / "ssp460-campaign-1" / "batch.yaml"
    batch.write_text(batch.read_text() + "# edited after main's run\n")
    assert stale_stages(root) == ["prepare", "drift", "train", "evaluate"]
    code, md = _report(root, capsys)
    assert code == 1 and "Data Drift Check: Passed" not in md and "Data Drift Check: Not run" in md
