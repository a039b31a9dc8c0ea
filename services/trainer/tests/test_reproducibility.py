"""The whole DVC pipeline run in a fresh copy of the project, then its model forced again, gives identical metrics.

The second run forces only the stages that make the model and its metrics (train, evaluate) on the first
run's data: prepare's determinism is checked by test_prepare.py::test_prepare_is_deterministic, evaluate's
alone by test_evaluate.py::test_evaluate_twice_gives_identical_files, and the model does not read drift's
report (train depends on it for order only: the gate passes first).
"""

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
    for cmd in (["dvc", "repro", "--force"], ["dvc", "repro", "--force", "--single-item", "train", "evaluate"]):
        run(cmd, project, env)  # MLflow: the local ./mlruns store
        outputs.append({name: (project / name).read_bytes()
                        for name in ("metrics/metrics.json", "metrics/predictions.csv")})
    assert outputs[0] == outputs[1]
    assert b'"rmse"' in outputs[0]["metrics/metrics.json"]
