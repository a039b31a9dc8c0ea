"""soilci pipeline's driver: stage order from DVC, image reuse keys, and its failures before any stage runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from soilci.cli import main
from soilci.pipeline.run import Stage, input_digest, load_stages
from tests.support import copy_project

BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([str(BIN / "dvc"), "remote", "add", "-d", "-f", "local", str(tmp_path / "remote")], cwd=root,
                   check=True, capture_output=True)
    return root


def test_stages_come_from_dvc_yaml_in_lineage_order_with_their_images(project: Path):
    stages = load_stages(project)
    assert [(s.name, s.service) for s in stages] == [
        ("prepare", "trainer"), ("drift", "drift"), ("train", "trainer"), ("evaluate", "trainer")]
    drift = stages[1]
    assert drift.cmd.startswith("soil-drift check data/reference.parquet data/incoming.parquet")
    assert "reports/drift.json" in drift.outs


def test_a_stage_whose_command_is_not_a_service_is_bad_input():
    from soilci.errors import ConfigError

    with pytest.raises(ConfigError, match="stage 'x': cmd must start with a soil-<service> program"):
        _ = Stage("x", "python train.py", (), ()).service


def test_image_key_follows_the_services_build_inputs_only(project: Path):
    trainer, drift = input_digest(project, "trainer", "base"), input_digest(project, "drift", "base")
    assert trainer != drift
    assert input_digest(project, "trainer", "other-base") != trainer

    (project / "docs" / "ARCHITECTURE.md").write_text("changed")
    (project / "services" / "trainer" / "src" / "soil_trainer" / "__pycache__").mkdir(exist_ok=True)
    (project / "services" / "trainer" / "src" / "soil_trainer" / "__pycache__" / "x.pyc").write_bytes(b"0")
    assert input_digest(project, "trainer", "base") == trainer

    cli = project / "services" / "trainer" / "src" / "soil_trainer" / "cli.py"
    cli.write_text(cli.read_text() + "\n# changed\n")
    assert input_digest(project, "trainer", "base") != trainer
    assert input_digest(project, "drift", "base") == drift
    (project / "uv.lock").write_text((project / "uv.lock").read_text() + "\n")
    assert input_digest(project, "drift", "base") != drift


def test_missing_docker_engine_exits_3_with_what_to_do(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["pipeline", "--repo", str(project)]) == 3
    err = capsys.readouterr().err
    assert "no Docker engine answers" in err and "soilci pipeline --local" in err
    run = json.loads(next((project / "runs").glob("*/run.json")).read_text())
    assert run["exit_code"] == 3 and {s["outcome"] for s in run["stages"]} == {"not run"}
    assert not (project / "data").exists()  # nothing ran


def test_pipeline_outside_a_project_exits_2_naming_dvc_yaml(tmp_path: Path, capsys):
    assert main(["pipeline", "--repo", str(tmp_path)]) == 2
    assert "dvc.yaml: not found" in capsys.readouterr().err


def test_pipeline_cli_help_lists_local_base_and_push(capsys):
    assert main(["pipeline", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--local" in out and "--base" in out and "--push" in out


@pytest.mark.skipif(os.getuid() != 0, reason="ownership handling differs when not root")
def test_containers_run_as_the_image_user_when_root_owns_the_tree(project: Path):
    from soilci.pipeline.run import IMAGE_USER, ContainerRunner

    runner = ContainerRunner(project, client=None)
    assert runner.user == IMAGE_USER and runner.chown_to == (0, 0)
    os.chown(project, 1234, 1234)
    assert ContainerRunner(project, client=None).user == "1234:1234"
