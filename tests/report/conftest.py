"""Fixtures of the report tests: two real models' benchmark results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.report.results import fit_predict, git
from tests.support import copy_project


@pytest.fixture(scope="module")
def models(prepared_data: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    """A weak (1 PLS component) and a good (8) model: metrics.json content and predictions.csv rows."""
    return {"weak": fit_predict(prepared_data, 1), "good": fit_predict(prepared_data, 8)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as a git repository (branch main, nothing committed) with a local DVC remote."""
    root = copy_project(tmp_path / "project", pr_batch=False)
    git(root, "init", "-q", "-b", "main")
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "remote", "add", "-d", "-f", "local",
                    str(tmp_path / "remote")], cwd=root, check=True, capture_output=True)
    return root
