"""Fixtures of the report tests: two real models' benchmark results, and main's real published run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from soilci.cli import main
from tests.report.results import commit_main_results, fit_predict, git, make_repo
from tests.support import copy_project, set_dvc_config


@pytest.fixture(scope="session")
def models(prepared_data: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    """A weak (1 PLS component) and a good (8) model: metrics.json content and predictions.csv rows.

    Shared by every test of the worker: tests build new dicts and frames from them, never change them."""
    return {"weak": fit_predict(prepared_data, 1), "good": fit_predict(prepared_data, 8)}


@pytest.fixture(scope="session")
def better_report(tmp_path_factory, models) -> tuple[Path, str, int, str]:
    """``soilci report`` of the weak model's results at the base and the good one's in the working tree,
    made once for the tests that only read it (the same comparison each would make): the repo (its
    report in ``out``), the base commit, the exit code and report.md."""
    repo, sha = make_repo(tmp_path_factory.mktemp("better-report"), models["weak"], models["good"])
    code = main(["report", "--base", sha, "--repo", str(repo), "--out-dir", str(repo / "out")])
    return repo, sha, code, (repo / "out" / "report.md").read_text()


def new_project(root: Path) -> Path:
    """A copy of the project in ``root``/project as a git repository (branch main, nothing committed) with
    a local DVC remote in ``root``/remote."""
    project = copy_project(root / "project", pr_batch=False)
    git(project, "init", "-q", "-b", "main")
    set_dvc_config(project, remote=root / "remote", default=True)
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as a git repository (branch main, nothing committed) with a local DVC remote."""
    return new_project(tmp_path)


@pytest.fixture(scope="session")
def main_published(tmp_path_factory) -> Path:
    """One real run of main's workflow, made once per worker (conftest.py keeps tests/report on one):
    the project committed on main, then `soilci pipeline --local --push`; returns the folder holding
    ``project`` (its tree as the run left it) and ``remote`` (the DVC remote with main's results)."""
    root = tmp_path_factory.mktemp("main-published")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
        commit_main_results(new_project(root))
    return root


@pytest.fixture(scope="session")
def shared_cache(main_published: Path) -> Path:
    """The DVC cache of main's run, which every copy and clone of it uses (`dvc cache dir`, as projects on one
    machine share one): a stage run with the same data, params and code as an earlier test's (or main's) is
    restored from DVC's run-cache instead of run again. Objects and run entries are keyed by content, so a
    test only ever adds to it."""
    return main_published / "project" / ".dvc" / "cache"


@pytest.fixture
def published_project(main_published: Path, shared_cache: Path, tmp_path: Path) -> Path:
    """This test's own copy of ``main_published``: ``tmp_path``/project on main right after main's run, its
    results published in ``tmp_path``/remote, its DVC cache the ``shared_cache``. The committed DVC config
    still names the shared remote, so the copy's own remote and the cache are set in the untracked
    .dvc/config.local (what a clone of it reads is the shared remote, which nothing writes to)."""
    shutil.copytree(main_published / "project", tmp_path / "project", symlinks=True,
                    ignore=lambda folder, names: ["cache"] if Path(folder).name == ".dvc" else [])
    shutil.copytree(main_published / "remote", tmp_path / "remote", symlinks=True)
    project = tmp_path / "project"
    set_dvc_config(project, "local", remote=tmp_path / "remote", cache=shared_cache)
    return project
