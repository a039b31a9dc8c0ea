"""soilci.pipeline.runners: who a stage container runs as, what it carries, which network it joins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soilci.pipeline.dvc import Stage
from soilci.pipeline.register import register_stage
from soilci.pipeline.runners import IMAGE_USER, STAGE_NETWORK_ENV, ContainerRunner, hand_back

DRIFT = Stage("drift", "soil-drift check a b", (), ("reports/drift.json",))


@pytest.mark.skipif(os.getuid() != 0, reason="ownership handling differs when not root")
def test_containers_run_as_the_image_user_when_root_owns_the_tree(project: Path):
    runner = ContainerRunner(project, client=None)
    assert runner.user == IMAGE_USER and runner.chown_to == (0, 0)
    os.chown(project, 1234, 1234)
    assert ContainerRunner(project, client=None).user == "1234:1234"


def test_stage_containers_carry_their_run_and_stage_and_mount_the_tree_at_work(project: Path, monkeypatch):
    monkeypatch.delenv(STAGE_NETWORK_ENV, raising=False)
    monkeypatch.setenv("SOILCI_GIT_REVISION", "0123abc")
    options = ContainerRunner(project, client=None, run_id="20250101T000000.000000Z").container_options(DRIFT)
    assert options["labels"] == {"org.soilci.run-id": "20250101T000000.000000Z", "org.soilci.stage": "drift"}
    assert options["volumes"] == {str(project): {"bind": "/work", "mode": "rw"}}
    assert options["command"] == ["soil-drift check a b"] and options["working_dir"] == "/work"
    assert options["environment"]["SOILCI_GIT_REVISION"] == "0123abc"
    assert options["network_mode"] == "host" and "network" not in options


def test_stage_containers_join_the_network_the_environment_names(project: Path, monkeypatch):
    monkeypatch.setenv(STAGE_NETWORK_ENV, "soilci-stack")
    options = ContainerRunner(project, client=None).container_options(DRIFT)
    assert options["network"] == "soilci-stack" and "network_mode" not in options


def test_registration_runs_in_the_trainer_image_and_writes_only_its_record():
    stage = register_stage("main")
    assert stage.service == "trainer"
    assert stage.cmd == "soil-trainer register --out runs/registered.json --branch main"
    assert stage.outs == ("runs/registered.json",)
    assert "--branch" not in register_stage(None).cmd


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
