"""The report's details: the latest pipeline run, read as the shared run record."""

from __future__ import annotations

from soil_contracts.records import RunRecord, StageRecord
from tests.report.results import make_repo, run_report

RUN_ID = "20250101T000000.000000Z"


def test_details_list_the_latest_runs_stages_and_what_to_commit(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    RunRecord(run_id=RUN_ID, mode="local", started="2025-01-01T00:00:00+00:00", repo=str(repo), stages=[
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
