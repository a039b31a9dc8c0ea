"""Fixtures of the pipeline driver's tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import copy_project, set_dvc_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as a git repository (branch main, nothing committed) with a local DVC remote.

    Its library is the committed demo library (no PR batch): each test adds what its PR brings.
    """
    root = copy_project(tmp_path / "project", pr_batch=False)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    set_dvc_config(root, remote=tmp_path / "remote", default=True)
    return root
