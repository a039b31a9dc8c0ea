"""Main's results by commit in the DVC remote: PR branches carry no result files and still get a full report.

Real parts: git repositories and a clone, the real pipeline (--local), a local DVC remote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dvc.config import Config

from soilci.cli import main
from soilci.pipeline.dvc import open_repo
from soilci.report.baseline import clean_commit, collect, publish
from soilci.report.inputs import read_base
from tests.report.results import git, make_batch_and_params_pr, make_ph_pr, write_results
from tests.support import REPO_ROOT, set_dvc_config

pytestmark = pytest.mark.slow


def changed_by_run(repo: Path) -> list[str]:
    """What a run leaves for git to see: staged files, and untracked files that are not ignored."""
    staged = git(repo, "diff", "--cached", "--name-only").splitlines()
    untracked = git(repo, "ls-files", "--others", "--exclude-standard").splitlines()
    return sorted(staged + untracked)


def metrics_diff(repo: Path, rev: str) -> dict:
    """`dvc metrics diff <rev> --json` of the working tree, through DVC's own Repo in process."""
    with open_repo(repo) as dvc:
        return dvc.metrics.diff(a_rev=rev)["diff"]


def test_prs_without_result_files_compare_with_mains_published_results_and_rebase_cleanly(
        published_project, shared_cache, prepared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    # Main's workflow (the fixture): the pipeline with --push published the run's results under the commit.
    root = published_project
    main_sha = git(root, "rev-parse", "HEAD")
    record = json.loads((tmp_path / "remote" / "soilci-results" / f"{main_sha}.json").read_text())
    main_rmse = json.loads(record["metrics"])["rmse"]
    assert record["commit"] == main_sha and "sample_id,observed,predicted,residual" in record["predictions"]
    assert changed_by_run(root) == ["dvc.lock"]  # nothing staged; metrics/ and reports/ are ignored

    # PR A, in a fresh clone (no result files anywhere in git): a new batch and two params, committed as a
    # lab does (pull, import the batch, then commit -a). The clone shares main's DVC cache (`dvc cache dir`,
    # as clones on one machine do). PR A is test_changes' pull request and PR B test_comparable's, so these
    # runs are the ones those tests restore from the run-cache; nothing here asks which stages ran.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    set_dvc_config(clone, "local", cache=shared_cache)
    git(clone, "checkout", "-qb", "pr-a")
    tracked = sorted(str(f.relative_to(clone)) for f in (clone / "library").rglob("*.dvc"))
    with open_repo(clone) as dvc:  # `dvc pull <the library's .dvc files>`: the import reads the spectra
        dvc.pull(targets=tracked)
    make_batch_and_params_pr(clone, prepared_data)
    git(clone, "add", "library")
    git(clone, "commit", "-qam", "Batch lab-a; PLS: at most 12 components, seed 7")
    assert main(["pipeline", "--local", "--base", "origin/main", "--repo", str(clone)]) == 0
    assert changed_by_run(clone) == ["dvc.lock"] and not git(clone, "status", "--porcelain", "--untracked-files=no")
    # DVC's own diff has no main side: main's revision holds neither dvc.lock nor metrics/.
    assert metrics_diff(clone, "main")["metrics/metrics.json"]["rmse"]["old"] is None
    # README's "compare with main", verbatim, from the clone: main's numbers come from the remote.
    line = next(ln for ln in (REPO_ROOT / "README.md").read_text().splitlines() if "# compare with main" in ln)
    program, *args = line.split("#")[0].split()
    assert program == ".venv/bin/soilci"
    capsys.readouterr()
    monkeypatch.chdir(clone)
    assert main(args) == 0
    assert f"{main_rmse:.3f} → " in capsys.readouterr().err  # the headline, main's RMSE first
    assert f"main's results of {main_sha[:7]} from the DVC remote" in (clone / "report.md").read_text()
    shutil.rmtree(clone / ".soilci" / "results")  # the next report pulls again
    capsys.readouterr()
    code = main(["report", "--base", "origin/main", "--repo", str(clone), "--out-dir", str(tmp_path / "out"),
                 "--exit-zero"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert code == 0
    rmse_row = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    assert f"{main_rmse:.3f}" in rmse_row.split("|")[2]  # main's number, from the remote
    assert "paired bootstrap, 92 benchmark samples" in md  # a full comparison, sample by sample
    assert f"main's results of {main_sha[:7]} from the DVC remote" in md
    assert "| `train.pls.max_components` | `20` | `12` |" in md
    assert (clone / ".soilci" / "results" / f"{main_sha}.json").is_file()

    # PR B, from the same main: the model predicts pH instead (other lines of params.yaml than PR A's).
    git(clone, "checkout", "-q", "main")
    git(clone, "checkout", "-qb", "pr-b")
    make_ph_pr(clone)
    git(clone, "commit", "-qam", "Predict pH")
    assert main(["pipeline", "--local", "--base", "origin/main", "--repo", str(clone)]) == 0
    assert changed_by_run(clone) == ["dvc.lock"] and not git(clone, "status", "--porcelain", "--untracked-files=no")
    for branch in ("pr-a", "pr-b"):
        files = git(clone, "diff", "--name-only", f"main...{branch}").splitlines()
        assert not [f for f in files if f == "dvc.lock" or f.startswith(("metrics/", "reports/"))], files
    # Rebasing either onto the other meets no result file.
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    rebase = subprocess.run(["git", "-C", str(clone), "rebase", "pr-a"], check=False, capture_output=True,
                            text=True, env=env)
    assert rebase.returncode == 0, rebase.stdout + rebase.stderr
    rebased = git(clone, "show", "pr-b:params.yaml")
    assert "max_components: 12 " in rebased and "target: pH_target " in rebased
    assert git(clone, "ls-tree", "--name-only", "pr-b", "library/batches/").splitlines() == [
        "library/batches/lab-a", "library/batches/ssp460-campaign-1"]


def test_a_base_without_published_results_says_where_it_looked(project, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # the PR workflow's step
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    base = read_base(root, "main")
    assert base.metrics is None
    assert base.note.startswith("not in git, and the DVC remote holds no results of this commit")
    assert main(["results", "pull", "--base", "main", "--repo", str(root)]) == 1
    assert "no results of main" in capsys.readouterr().err
    # The PR workflow's step: a missing record is a warning, not a failure ...
    assert main(["results", "pull", "--base", "main", "--repo", str(root), "--missing-ok"]) == 0
    assert "::warning title=No baseline::no results of main" in capsys.readouterr().out
    # ... but a remote that is not there is not "no record yet": it still fails.
    with Config(dvc_dir=str(root / ".dvc")).edit("repo") as conf:  # `dvc remote remove local`, in process
        del conf["remote"]["local"]
        del conf["core"]["remote"]
    assert main(["results", "pull", "--base", "main", "--repo", str(root), "--missing-ok"]) == 2


def test_the_nearest_published_ancestor_is_used_and_named(project, models, capsys):
    """main's newest commit is not published yet (its run is still going): the one before it is."""
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main 1")
    write_results(root, models["good"])
    first = git(root, "rev-parse", "HEAD")
    where = publish(root, collect(root, first))
    assert where.endswith(f"soilci-results/{first}.json")
    shutil.rmtree(root / ".soilci" / "results")  # only the remote has it now
    (root / "README.md").write_text("a newer main commit\n")
    git(root, "commit", "-qam", "main 2")
    second = git(root, "rev-parse", "HEAD")
    base = read_base(root, "main")
    assert (base.sha, base.asked) == (first, second)
    assert base.source.startswith("the DVC remote (") and base.metrics["rmse"] == models["good"][0]["rmse"]
    assert len(base.predictions) == 92
    assert (root / ".soilci" / "results" / f"{first}.json").is_file()  # kept for the next report
    assert read_base(root, "main").source.startswith("the local copy")
    shutil.rmtree(root / ".soilci" / "results")
    assert main(["results", "pull", "--base", "main", "--repo", str(root)]) == 0  # CI's credentialed step
    assert f"fetched the results of {first[:7]}, 1 commit(s) before main" in capsys.readouterr().err
    assert (root / ".soilci" / "results" / f"{first}.json").is_file()


def test_a_tree_that_differs_from_its_commit_publishes_nothing(project, models):
    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    write_results(root, models["good"])
    assert clean_commit(root) == git(root, "rev-parse", "HEAD")  # results and dvc.lock are the run's own
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params + "\n")
    assert clean_commit(root) is None
    (root / "params.yaml").write_text(params)


def test_an_untracked_batch_makes_the_tree_differ_from_its_commit(project, models):
    """The new-user trial: a batch imported but not committed (untracked batch.yaml and .dvc file) was
    published as main's results and registered under main's bare commit."""
    from soil_contracts.git import git_revision
    from soilci.revision import differences, tree_state

    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    head = git(root, "rev-parse", "HEAD")
    write_results(root, models["good"])
    (root / "dvc.lock").write_text("schema: '2.0'\n")  # untracked on purpose: the run's own
    assert clean_commit(root) == head and git_revision(root, env=False) == head and tree_state(root) == (head, "")
    batch = root / "library" / "batches" / "b-off"
    batch.mkdir()
    (batch / "batch.yaml").write_text("id: b-off\n")
    (batch / "spectra.parquet.dvc").write_text("outs: []\n")
    assert clean_commit(root) is None and git_revision(root, env=False) == f"{head}-dirty"
    assert differences(root) == ["library/batches/b-off/batch.yaml", "library/batches/b-off/spectra.parquet.dvc"]
    first = tree_state(root)[1]
    (batch / "batch.yaml").write_text("id: b-off\nrows: 46\n")  # other bytes: another tree
    assert first not in {"", None} and tree_state(root)[1] not in {"", None, first}
    # The second trial: an ignore rule hiding the batch does not hide it from the check (.gitignore or
    # .git/info/exclude), and "dvc.lock" is the file itself, not a prefix.
    (root / ".git" / "info" / "exclude").write_text("/library/batches/b-off/\n")
    assert clean_commit(root) is None and git_revision(root, env=False) == f"{head}-dirty"
    shutil.rmtree(batch)
    (root / "dvc.lock_helper.py").write_text("")
    assert differences(root) == ["dvc.lock_helper.py"] and git_revision(root, env=False) == f"{head}-dirty"
    (root / "dvc.lock_helper.py").unlink()
    # A .gitignore edit alone changes neither code nor data: clean for both the results and the revision.
    (root / ".gitignore").write_text((root / ".gitignore").read_text() + ".idea/\n")
    assert clean_commit(root) == head and git_revision(root, env=False) == head


def test_results_push_refuses_results_that_are_not_heads_last_run_and_a_busy_tree(project, models, capsys):
    from soilci.pipeline.lock import TreeLock

    root = project
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    write_results(root, models["good"])  # numbers, but no run of this tree's stages recorded them
    assert main(["results", "push", "--repo", str(root)]) == 2
    assert "differ from dvc.lock" in capsys.readouterr().err
    assert not (root.parent / "remote" / "soilci-results").exists()

    lock = TreeLock(root)
    lock.acquire()  # a pipeline run holds the tree
    try:
        assert main(["results", "push", "--repo", str(root)]) == 3
    finally:
        lock.release()
    assert f"another soilci pipeline run is using this working tree: pid {os.getpid()}" in capsys.readouterr().err
