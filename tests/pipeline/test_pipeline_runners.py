"""soilci.pipeline.runners: who a stage container runs as, what it carries, which network it joins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soilci.pipeline.dvc import Stage
from soilci.pipeline.ownership import hand_back
from soilci.pipeline.register import register_stage
from soilci.pipeline.runners import IMAGE_USER, STAGE_NETWORK_ENV, ContainerRunner

DRIFT = Stage("drift", "soil-drift check a b", (), ("reports/drift.json",))
TRAIN = Stage("train", "soil-trainer train", (), ("models/model",))


@pytest.mark.skipif(os.getuid() != 0, reason="ownership handling differs when not root")
def test_containers_run_as_the_image_user_when_root_owns_the_tree(project: Path):
    runner = ContainerRunner(project, client=None)
    assert runner.user == IMAGE_USER and runner.chown_to == (0, 0)
    os.chown(project, 1234, 1234)
    assert ContainerRunner(project, client=None).user == "1234:1234"


def test_stage_containers_carry_their_run_stage_and_project_and_mount_the_tree_read_only(project: Path, monkeypatch):
    monkeypatch.setenv("SOILCI_GIT_REVISION", "0123abc")
    options = ContainerRunner(project, client=None, run_id="20250101T000000.000000Z").container_options(DRIFT)
    assert options["labels"] == {"org.soilci.run-id": "20250101T000000.000000Z", "org.soilci.stage": "drift",
                                 "org.soilci.project": str(project)}
    assert options["volumes"] == {str(project): {"bind": "/work", "mode": "ro"},
                                  str(project / "reports"): {"bind": "/work/reports", "mode": "rw"}}
    assert options["command"] == ["soil-drift check a b"] and options["working_dir"] == "/work"
    assert options["environment"]["SOILCI_GIT_REVISION"] == "0123abc"


def test_stage_containers_get_a_read_only_root_a_tmpfs_and_limits(project: Path, monkeypatch):
    monkeypatch.delenv("SOILCI_STAGE_MEMORY", raising=False)
    monkeypatch.setenv("SOILCI_STAGE_CPUS", "1.5")
    options = ContainerRunner(project, client=None).container_options(DRIFT)
    assert options["read_only"] is True and set(options["tmpfs"]) == {"/tmp"}
    assert options["environment"]["HOME"] == "/tmp"
    assert options["mem_limit"] == "4g" and options["nano_cpus"] == 1_500_000_000
    assert options["cap_drop"] == ["ALL"] and options["security_opt"] == ["no-new-privileges"]


@pytest.mark.parametrize(
    ("network", "stage", "expected"),
    [
        (None, DRIFT, {"network_mode": "none"}),
        ("host", DRIFT, {"network_mode": "none"}),
        (None, TRAIN, {"network_mode": "bridge"}),
        ("host", TRAIN, {"network_mode": "host"}),
        ("soilci-stack", TRAIN, {"network": "soilci-stack"}),
        ("soilci-stack", register_stage("main"), {"network": "soilci-stack"}),
    ],
)
def test_only_mlflow_stages_get_a_network_and_host_networking_only_when_asked(
    project: Path, monkeypatch, network, stage, expected
):
    if network:
        monkeypatch.setenv(STAGE_NETWORK_ENV, network)
    else:
        monkeypatch.delenv(STAGE_NETWORK_ENV, raising=False)
    options = ContainerRunner(project, client=None).container_options(stage)
    assert {k: options[k] for k in ("network", "network_mode") if k in options} == expected


def test_mlflow_credentials_reach_only_the_train_and_register_containers(project: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:uri-s3cret@127.0.0.1:47501")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-s3cret")
    runner = ContainerRunner(project, client=None)
    for stage in (DRIFT, Stage("evaluate", "soil-trainer evaluate", (), ("metrics/m.json",)),
                  Stage("prepare", "soil-trainer prepare", (), ("data/x",))):
        env = runner.container_options(stage)["environment"]
        assert not [k for k in env if k.startswith(("MLFLOW_", "AWS_"))], stage.name
    for stage in (TRAIN, register_stage("main")):
        env = runner.container_options(stage)["environment"]
        assert env["MLFLOW_TRACKING_PASSWORD"] == "env-s3cret" and "AWS_SECRET_ACCESS_KEY" not in env


def test_the_services_thread_limits_reach_every_stage_container(project: Path, monkeypatch):
    monkeypatch.setenv("SOIL_DRIFT_THREADS", "2")
    monkeypatch.setenv("SOIL_TRAINER_THREADS", "2")
    monkeypatch.setenv("SOIL_OTHER", "x")
    runner = ContainerRunner(project, client=None)
    for stage in (DRIFT, TRAIN, Stage("evaluate", "soil-trainer evaluate", (), ("metrics/m.json",))):
        env = runner.container_options(stage)["environment"]
        assert (env["SOIL_DRIFT_THREADS"], env["SOIL_TRAINER_THREADS"]) == ("2", "2") and "SOIL_OTHER" not in env


class _Container:
    def __init__(self, labels, mounts=(), status="running"):
        self.labels, self.attrs, self.status, self.short_id = labels, {"Mounts": list(mounts)}, status, "c0ffee"
        self.removed = False

    def remove(self, force=False):
        self.removed = force


class _Client:
    def __init__(self, containers):
        self.containers = self
        self._all = containers

    def list(self, all=False, filters=None):
        assert all and filters == {"label": "org.soilci.stage"}
        return self._all


def test_stage_containers_a_killed_driver_left_in_this_tree_are_removed_before_a_rerun(project: Path):
    mine = _Container({"org.soilci.stage": "train", "org.soilci.run-id": "r1", "org.soilci.project": str(project)})
    older = _Container({"org.soilci.stage": "evaluate"}, mounts=[{"Source": str(project)}])
    other = _Container({"org.soilci.stage": "train", "org.soilci.project": "/elsewhere"})
    runner = ContainerRunner(project, client=_Client([mine, older, other]))
    said: list[str] = []
    assert runner.reap(said.append) == 2
    assert mine.removed and older.removed and not other.removed
    assert "removing stage container c0ffee (train, run r1, running) left by an earlier run" in said[0]


def test_registration_runs_in_the_trainer_image_and_writes_only_its_record():
    stage = register_stage("main")
    assert stage.service == "trainer"
    assert stage.cmd == "soil-trainer register --out runs/registered.json --branch main"
    assert stage.outs == ("runs/registered.json",)
    assert "--branch" not in register_stage(None).cmd


@pytest.mark.parametrize("branch", ["main; rm -rf /", "feature\nx", "-x", "a..b"])
def test_registration_refuses_a_branch_that_is_not_a_plain_name(branch):
    from soilci.errors import ConfigError

    with pytest.raises(ConfigError, match="not a plain branch name"):
        register_stage(branch)


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give files away")
def test_root_hands_what_it_wrote_back_to_the_trees_owner(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "runs" / "r1").mkdir(parents=True)
    (tree / "runs" / "r1" / "run.json").write_text("{}")
    (tree / "dvc.lock").write_text("")
    os.chown(tree, 1234, 1235)
    hand_back(tree, [tree / "runs", tree / "dvc.lock", tree / "absent"])
    for path in (tree / "runs", tree / "runs" / "r1" / "run.json", tree / "dvc.lock"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 1235), path


def test_credentials_in_stage_output_never_reach_the_run_log(project: Path, monkeypatch, tmp_path):
    from soilci.pipeline.runners import LocalRunner

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:uri-s3cret@127.0.0.1:47501")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-s3cret")
    # MLflow prints run links with the tracking URI as given, credentials included.
    cmd = 'echo "View run at $MLFLOW_TRACKING_URI/#/experiments/1"; echo "password: $MLFLOW_TRACKING_PASSWORD"'
    log, shown = tmp_path / "train.log", []
    assert LocalRunner(project).run(Stage("train", cmd, (), ()), log, shown.append) == 0
    text = log.read_text()
    assert "s3cret" not in text and "s3cret" not in "".join(shown)
    assert "View run at http://***@127.0.0.1:47501/#/experiments/1" in text and "password: ***" in text


def test_a_secret_split_across_output_chunks_is_still_masked(tmp_path, monkeypatch):
    import io

    from soilci.pipeline.runners import _stream_lines

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-s3cret")
    log, shown = io.StringIO(), []
    _stream_lines([b"key aws-s3", b"cret\nlink http://bob:pw", b"@host/x\ntail"], log, shown.append)
    assert log.getvalue() == "key ***\nlink http://***@host/x\ntail"
    assert shown == ["key ***", "link http://***@host/x", "tail"]
