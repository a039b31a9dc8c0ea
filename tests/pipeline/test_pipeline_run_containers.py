"""End to end: a throwaway git repo of the project, the pipeline in containers, and the PR report.

One story, in order (the tests share the repo): main's run after a merge that added a batch, with
registration, as CI's main workflow runs it (`--base HEAD~1`); a PR that changes a hyperparameter and
gets a report comparing both; a warm rerun that starts nothing; a PR bringing a shifted batch that
fails the drift gate; a PR whose training crashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from soil_contracts.records import RegisteredVersion, RunRecord
from soilci.cli import main
from tests.support import PR_BATCH, add_batch, add_library, copy_project, set_dvc_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def set_param(repo: Path, dotted: str, value) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def last_run(repo: Path) -> RunRecord:
    return RunRecord.load(max((repo / "runs").glob("*/run.json")))


def outcomes(run: RunRecord) -> dict[str, str]:
    return {s.name: s.outcome for s in run.stages}


def stage_containers_started(docker_client, run: RunRecord, since: float) -> list[str]:
    """The stages whose containers the engine started for ``run`` (from its event log), in order."""
    events = docker_client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "start",
                                           "label": f"org.soilci.run-id={run.run_id}"})
    return [e["Actor"]["Attributes"]["org.soilci.stage"] for e in events]


@pytest.fixture(scope="module")
def project(tmp_path_factory, built_images, mlflow_server, monkeypatch_module) -> Path:
    """The project at main: git repo, its own DVC remote, small CV settings to keep training short."""
    root = copy_project(tmp_path_factory.mktemp("pipeline") / "project", pr_batch=False)
    remote = tmp_path_factory.mktemp("dvc-remote")
    git(root, "init", "-q", "-b", "main")
    set_dvc_config(root, remote=remote, default=True)
    set_param(root, "train.pls.max_components", 8)
    set_param(root, "train.pls.cv_folds", 5)
    commit(root, "project")
    add_library(root)  # the merged PR's batch: fold 3
    commit(root, f"Merge: batch {PR_BATCH}")
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch_module.setenv("SOILCI_STAGE_NETWORK", "host")  # the test server listens on loopback
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def main_run(project: Path, docker_client) -> RunRecord:
    """main's run as CI's main workflow runs it: every stage, push, then registration."""
    since = time.time() - 1
    assert main(["pipeline", "--repo", str(project), "--base", "HEAD~1", "--push", "--register"]) == 0
    run = last_run(project)
    assert outcomes(run) == dict.fromkeys(["prepare", "drift", "train", "evaluate"], "ran")
    assert stage_containers_started(docker_client, run, since) == [
        "prepare", "drift", "train", "evaluate", "register"]
    return run


@pytest.fixture(scope="module")
def main_sha(project: Path, main_run) -> str:
    """A commit after main's run: its dvc.lock (what a fresh clone pulls by). Its numbers are not in git
    (metrics/ is ignored): main's run published them to the DVC remote under the commit it ran on."""
    return commit(project, "dvc.lock of main's run")


def test_main_run_registers_the_evaluated_model_and_records_the_version(project, main_run, mlflow_server):
    from mlflow import MlflowClient

    registered = RegisteredVersion.load(project / "runs" / "registered.json")
    assert (registered.name, registered.alias) == ("soil-soc", "staging")
    assert registered.uri == f"models:/soil-soc/{registered.version}"
    staging = MlflowClient(mlflow_server).get_model_version_by_alias("soil-soc", "staging")
    assert staging.version == registered.version
    assert staging.tags["git_revision"] == git(project, "rev-parse", "HEAD")
    assert "soil-trainer register --out runs/registered.json --branch main" in (
        project / "runs" / main_run.run_id / "register.log").read_text()


def test_main_run_records_every_stage_with_dvc_and_leaves_files_owned_by_the_tree_owner(project, main_sha):
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"prepare", "drift", "train", "evaluate"}
    drift = json.loads((project / "reports" / "drift.json").read_text())
    assert drift["status"] == "pass"  # the merged batch against the library before it
    assert (drift["reference"]["rows"], drift["candidate"]["rows"]) == (322, 46)
    assert (project / "models" / "model" / "MLmodel").exists()
    owner = project.stat().st_uid
    for path in [project / "metrics" / "metrics.json", project / "data" / "reference.parquet",
                 *(project / "models" / "model").rglob("*")]:
        assert path.stat().st_uid == owner, path
    tracked = git(project, "ls-files").splitlines()
    assert "dvc.lock" in tracked  # results live in the DVC cache and remote, never in git
    assert not [f for f in tracked if f.startswith(("data/", "models/", "runs/", "mlruns/", "metrics/", "reports/"))]
    run = last_run(project)
    for stage in run.stages:
        assert (project / stage.log).stat().st_size > 0


def test_fresh_clone_pulls_mains_outputs_from_the_remote_and_runs_no_stage(
    project, main_sha, tmp_path, docker_client
):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    assert not (clone / "data").exists()
    since = time.time() - 1
    assert main(["pipeline", "--repo", str(clone), "--base", "HEAD~2"]) == 0  # main's run compared HEAD~1
    run = last_run(clone)
    assert run.pull.startswith("pulled: ") and "added" in run.pull and set(outcomes(run).values()) == {"up to date"}
    assert stage_containers_started(docker_client, run, since) == []
    assert (clone / "models" / "model" / "MLmodel").exists()


def test_hyperparameter_change_reruns_train_and_evaluate_and_the_report_compares_both(
    project, main_sha, tmp_path, docker_client
):
    base_rmse = json.loads((project / "metrics" / "metrics.json").read_text())["rmse"]
    set_param(project, "train.pls.max_components", 2)
    commit(project, "fewer PLS components")

    since = time.time() - 1
    assert main(["pipeline", "--repo", str(project), "--base", main_sha + "~2"]) == 0  # the same library diff
    run = last_run(project)
    assert outcomes(run) == {"prepare": "up to date", "drift": "up to date", "train": "ran", "evaluate": "ran"}
    assert stage_containers_started(docker_client, run, since) == ["train", "evaluate"]
    pr_rmse = json.loads((project / "metrics" / "metrics.json").read_text())["rmse"]
    assert pr_rmse != base_rmse

    out = tmp_path / "pr-report"
    assert main(["report", "--base", main_sha, "--repo", str(project), "--out-dir", str(out), "--exit-zero"]) == 0
    md = (out / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    assert f"{base_rmse:.3f}" in row and f"{pr_rmse:.3f}" in row and f"{pr_rmse - base_rmse:+.3f}" in row
    assert ("✅ better" in row) == (pr_rmse < base_rmse)
    assert "**Data Drift Check: Passed**" in md
    assert "95% CI [" in md and "paired bootstrap, 92 benchmark samples" in md
    for name in ("prediction_error.png", "prediction_error_base.png"):
        assert (out / "report" / name).stat().st_size > 5000
        assert f"](report/{name})" in md
    ran_on = git(project, "rev-parse", main_sha + "~1")  # the commit main's run published its results under
    assert (f"{ran_on[:7]} → {git(project, 'rev-parse', '--short=7', 'HEAD')} (base's results of {ran_on[:7]} "
            "from the local copy .soilci/results/") in md  # main's run published it here and to the remote
    assert "(same)" in md  # same data, different model
    assert "This run reproduced train, evaluate" in md
    commit(project, "results of the PR's run")


def test_warm_rerun_with_nothing_changed_starts_no_container(project, main_sha, docker_client):
    since = time.time() - 1
    assert main(["pipeline", "--repo", str(project), "--base", main_sha + "~2"]) == 0
    run = last_run(project)
    assert set(outcomes(run).values()) == {"up to date"} and run.images == {}
    assert stage_containers_started(docker_client, run, since) == []


def add_shifted_batch(project: Path, name: str) -> Path:
    """The fold-3 samples with a baseline offset of 5% of the mean signal, imported as a new batch."""
    incoming = pd.read_parquet(project / "data" / "incoming.parquet")
    bands = [c for c in incoming.columns if c.startswith("wl_")]
    offset = 0.05 * float(np.mean(incoming[bands].to_numpy()))
    shifted = incoming.assign(**{b: incoming[b] + offset for b in bands})
    shifted["sample_id"] = [f"{name}:{i}" for i in range(len(shifted))]
    return add_batch(project, name, shifted)


def test_shifted_batch_fails_at_the_drift_gate_and_the_report_says_failed(project, main_sha, capsys):
    add_shifted_batch(project, "shifted")
    commit(project, "a shifted batch")

    assert main(["pipeline", "--repo", str(project), "--base", main_sha]) == 1
    run = last_run(project)
    assert run.stopped_at == "drift" and run.exit_code == 1
    assert outcomes(run) == {"prepare": "ran", "drift": "failed", "train": "not run", "evaluate": "not run"}
    drift = json.loads((project / "reports" / "drift.json").read_text())
    assert drift["status"] == "fail" and drift["candidate"]["rows"] == 46  # the shifted batch alone
    assert (project / "reports" / "drift.png").exists()

    assert not (project / "report.md").exists()  # the report is `soilci report`'s, run next as in CI
    assert main(["report", "--base", main_sha, "--repo", str(project), "--out-dir", str(project)]) == 1  # red
    md = (project / "report.md").read_text()
    assert "**Data Drift Check: Failed**" in md
    assert md.splitlines()[0].startswith("## 🔴 Do not merge")
    assert "Not evaluated: the run stopped before the benchmark evaluation." in md
    assert "report/drift.png" in md and (project / "report" / "drift.png").exists()


def test_crashing_stage_exits_with_its_code_and_names_its_log(project, main_sha, capsys):
    git(project, "checkout", "-q", main_sha, "--", "params.yaml")
    git(project, "rm", "-rq", "library/batches/shifted")
    # Valid for params.yaml's schema (soilci pipeline checks it before any stage), impossible for the data:
    # a 999-point window on the 430-point grid, which the trainer refuses when it runs (exit 2).
    set_param(project, "train.family.sg1.savgol_window", 999)

    code = main(["pipeline", "--repo", str(project), "--base", main_sha + "~2"])
    err = capsys.readouterr().err
    assert code == 2
    run = last_run(project)
    assert run.stopped_at == "train"
    # The batch is gone again: prepare comes back from DVC's run-cache, drift's verdict (cached, as every
    # result) from the pull; neither runs a container.
    assert outcomes(run)["prepare"] == "restored" and outcomes(run)["drift"] == "up to date"
    assert run.pull and run.pull.startswith("pulled: ")  # the failed gate's leftovers do not block the pull
    assert "stage 'train' failed with exit code 2" in err and "train.log" in err
    assert "savgol_window: 999 is longer than" in (project / run.stages[2].log).read_text()
