"""The report's details: the latest pipeline run, read as the shared run record."""

from __future__ import annotations

from soil_contracts.records import RunRecord, StageRecord
from soilci.report.runs import latest_run
from soilci.revision import tree_state
from tests.report.results import make_repo, run_report

RUN_ID = "20250101T000000.000000Z"


def test_details_list_the_latest_runs_stages_and_what_to_commit(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    RunRecord(run_id=RUN_ID, mode="local", started="2025-01-01T00:00:00+00:00", repo=str(repo), commit=sha, stages=[
        StageRecord(name="prepare", outcome="restored", seconds=1.23),
        StageRecord(name="train", outcome="ran", seconds=12.0, log=f"runs/{RUN_ID}/train.log"),
        StageRecord(name="evaluate"),
    ]).save(repo / "runs" / RUN_ID / "run.json")
    _, md, _ = run_report(repo, sha, capsys)
    assert f"#### Run `{RUN_ID}` (local)" in md
    assert "| prepare | restored | 1.2 s |  |" in md
    assert f"| train | ran | 12.0 s | `runs/{RUN_ID}/train.log` |" in md
    assert "| evaluate | not run |  |  |" in md
    assert "This run reproduced prepare, train. Nothing to commit: `dvc.lock`" in md


def test_a_run_file_that_is_no_run_record_leaves_the_run_out(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    (repo / "runs" / RUN_ID).mkdir(parents=True)
    (repo / "runs" / RUN_ID / "run.json").write_text('{"stages": "none"}')
    code, md, _ = run_report(repo, sha, capsys)
    assert code == 0 and "#### Run" not in md and "🟢 Ready to merge" in md


def test_metrics_table_shows_interval_coverage_and_out_of_domain_rate_for_base_and_pr(tmp_path, models, capsys):
    weak, good = models["weak"], models["good"]
    base = ({**weak[0], "interval_coverage": 0.88, "out_of_domain_rate": 0.011}, weak[1])
    pr = ({**good[0], "interval_coverage": 0.902, "out_of_domain_rate": 0.022}, good[1])
    repo, sha = make_repo(tmp_path, base, pr)

    _, md, _ = run_report(repo, sha, capsys)

    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("|")}
    assert "0.88" in rows["90% interval coverage"] and "0.902" in rows["90% interval coverage"]
    assert "0.011" in rows["Out of domain"] and "0.022" in rows["Out of domain"]


def test_the_reasons_percentage_is_the_metrics_tables_rmse_change(tmp_path, models, capsys):
    """The new-user trial: the reason's "+x%" came from the paired bootstrap's RMSEs, the table's from
    metrics.json; with a benchmark only partly paired they differed. Both now show the metrics' change."""
    import re

    weak, good = models["weak"], models["good"]
    partly = (good[0], good[1].iloc[: len(good[1]) // 2])  # the PR's predictions pair with half the base's
    repo, sha = make_repo(tmp_path, weak, partly)
    _, md, _ = run_report(repo, sha, capsys, "--exit-zero")
    reason = md.splitlines()[2]
    row = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    table_pct = re.search(r"\(([+-]\d+\.\d%)\)", row).group(1)
    assert re.search(r"\(([+-]\d+\.\d%)", reason).group(1) == table_pct, (reason, row)
    assert f"{(good[0]['rmse'] - weak[0]['rmse']) / weak[0]['rmse'] * 100:+.1f}%" == table_pct


def test_a_batch_too_small_for_the_drift_gate_is_named_with_its_reason(project, capsys, monkeypatch):
    """The new-user trial: a PR adding a 5-row batch stopped at the drift stage (exit 2), and the report
    said only that the pipeline did not finish. The stage's own reason is now in the reason and details."""
    import pandas as pd

    from soilci.cli import main
    from tests.report.results import git
    from tests.support import add_batch

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    git(project, "add", "-A")
    git(project, "commit", "-qm", "main: the demo library")
    git(project, "checkout", "-qb", "tiny-batch")
    rows = pd.read_parquet(project / "library" / "batches" / "ssp460-campaign-1" / "spectra.parquet").head(5)
    bands = [c for c in rows.columns if c.startswith("wl_")]
    add_batch(project, "lab-tiny", rows.assign(sample_id=rows.sample_id + "-t", **{b: rows[b] * 1.01 for b in bands}))
    assert main(["pipeline", "--local", "--base", "main", "--repo", str(project)]) == 2
    code, md, _ = run_report(project, "main", capsys)
    why = "drift (exit 2): data/incoming.parquet: 5 rows, fewer than the 20 the tests need (drift.min_rows)"
    assert code == 1 and md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert md.splitlines()[2].endswith(f"; {why}.")
    assert f"It stopped before a verdict: **{why}**." in md and f"Stopped at **{why}**." in md


def test_a_run_of_another_commit_or_other_changes_is_not_this_trees(tmp_path, models, capsys):
    """runs/ is not in git: a run of another branch stays in the tree when it is checked out. The
    new-user trial: branch B's report quoted branch A's failed prepare."""
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    stages = [StageRecord(name="prepare", outcome="failed", exit_code=2, log=f"runs/{RUN_ID}/prepare.log")]
    (repo / "runs" / RUN_ID).mkdir(parents=True)
    (repo / "runs" / RUN_ID / "prepare.log").write_text(
        "soil-trainer: error: library/batches/lab-a-values/values.csv: bad\n")
    record = RunRecord(run_id=RUN_ID, mode="local", started="2025-01-01T00:00:00+00:00", repo=str(repo),
                       commit="0" * 40, stages=stages)
    record.save(repo / "runs" / RUN_ID / "run.json")
    assert latest_run(repo) is None
    record.model_copy(update={"commit": sha, "tree": "0123456789abcdef"}).save(repo / "runs" / RUN_ID / "run.json")
    assert latest_run(repo) is None  # this commit, other uncommitted changes
    commit, changes = tree_state(repo)
    assert commit == sha and changes == ""  # the PR's results differ from HEAD, but they are pipeline outputs
    record.model_copy(update={"commit": sha, "tree": changes}).save(repo / "runs" / RUN_ID / "run.json")
    assert latest_run(repo).commit == sha
    (repo / "params.yaml").write_text("evaluate:\n  rmse_max: 9\n")  # an edit after the run: not its tree
    assert tree_state(repo)[1] not in {"", None} and latest_run(repo) is None
    _code, md, _ = run_report(repo, sha, capsys)
    assert "#### Run" not in md and "lab-a-values" not in md
