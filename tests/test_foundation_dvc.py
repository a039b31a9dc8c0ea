"""dvc repro runs every stage once, reruns only what a change touches, and the remote round-trips."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import copy_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db",
           "SOILCI_GIT_REVISION": "test"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("project"))
    remote = tmp_path_factory.mktemp("remote")
    run(["git", "init", "-q", "-b", "main"], root)
    run([str(BIN / "dvc"), "remote", "add", "-f", "-d", "local", str(remote)], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], root)
    return root


def test_repro_runs_every_stage_then_nothing_then_only_what_a_hyperparameter_touches(project: Path):
    first = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(first.stdout) == ["prepare", "drift", "train", "evaluate"]

    second = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(second.stdout) == []

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["pls"]["max_components"] = params["train"]["pls"]["max_components"] - 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(third.stdout) == ["train", "evaluate"]

    diff = run([str(BIN / "dvc"), "metrics", "show", "--json"], project)
    assert "rmse" in diff.stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_dvc_push_then_pull_restores_the_data(project: Path):
    data = project / "data"
    if not (data / "reference.parquet").exists():
        run([str(BIN / "dvc"), "repro", "prepare"], project)
    before = {p.name: md5(p) for p in data.glob("*.parquet")}
    run([str(BIN / "dvc"), "push"], project)
    shutil.rmtree(data)
    shutil.rmtree(project / ".dvc" / "cache")
    run([str(BIN / "dvc"), "pull"], project)
    assert {p.name: md5(p) for p in data.glob("*.parquet")} == before
    assert len(before) == 3
