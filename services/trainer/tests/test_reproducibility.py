"""The whole DVC pipeline, forced twice in a fresh copy of the project, gives identical metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import copy_project


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_two_forced_dvc_repro_runs_give_identical_metrics(tmp_path):
    project = copy_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SOILCI_", "GITHUB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"})
    run(["git", "init", "-q", "-b", "main"], project, env)
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-q", "-m", "snapshot"], project, env)

    outputs = []
    for _ in range(2):
        run(["dvc", "repro", "--force"], project, env)  # MLflow: the local ./mlruns store
        outputs.append({name: (project / name).read_bytes()
                        for name in ("metrics/metrics.json", "metrics/predictions.csv")})
    assert outputs[0] == outputs[1]
    assert b'"rmse"' in outputs[0]["metrics/metrics.json"]
