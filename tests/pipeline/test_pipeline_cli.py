"""soilci pipeline's arguments and its failures before any stage runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from soil_contracts.records import RunRecord
from soilci.cli import main
from soilci.pipeline.outcomes import exit_meaning
from tests.support import copy_project


def test_missing_docker_engine_exits_3_with_what_to_do(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["pipeline", "--repo", str(project)]) == 3
    err = capsys.readouterr().err
    assert "no Docker engine answers" in err and "soilci pipeline --local" in err
    run = RunRecord.load(next((project / "runs").glob("*/run.json")))
    assert run.exit_code == 3 and {s.outcome for s in run.stages} == {"not run"}
    assert not (project / "data").exists()  # nothing ran


def test_pipeline_outside_a_project_exits_2_naming_dvc_yaml(tmp_path: Path, capsys):
    assert main(["pipeline", "--repo", str(tmp_path)]) == 2
    assert "dvc.yaml: not found" in capsys.readouterr().err


def test_pipeline_cli_help_lists_local_base_push_and_register(capsys):
    assert main(["pipeline", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--local" in out and "--push" in out and "--register" in out and "--branch" in out
    assert "--base" in out  # the library's base: the drift gate's candidate is what the branch adds
    assert "--out-dir" not in out  # the report is `soilci report`'s job


def _set(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("dvc.yaml", "      - library\n", "      - library\n      - ../outside.csv\n"),
         "dvc.yaml: stage 'prepare': dep '../outside.csv' is outside the project"),
        (("params.yaml", "  path: library", "  path: ../elsewhere/library"),
         "params.yaml library.path '../elsewhere/library' is outside the project"),
        (("params.yaml", "  path: library", "  path: extra/library"),
         ("dvc.yaml: stage 'prepare' reads the library at 'extra/library' (params.yaml library.path) but does "
         "not declare it as a dep")),
    ],
)
def test_inputs_outside_the_project_or_undeclared_are_refused_before_anything_is_written(
    project: Path, capsys, monkeypatch, edit, message
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    name, old, new = edit
    _set(project / name, old, new)
    assert main(["pipeline", "--repo", str(project)]) == 2
    assert message in capsys.readouterr().err
    assert not (project / "runs").exists() and not (project / "data").exists()


@pytest.mark.parametrize("blocked", ["reports", "metrics", "models", "runs", ".soilci"])
def test_a_file_where_an_output_folder_goes_is_refused_before_anything_is_written(
    project: Path, capsys, monkeypatch, blocked
):
    """New users' trials: a file named `reports` made `pipeline --local` crash with a traceback (exit 70)
    after prepare ran, and left a run folder without run.json; one named `.soilci` (where the run writes the
    base's library listing) crashed too."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    shutil.rmtree(project / blocked, ignore_errors=True)  # the copy has .soilci/ (a base listing)
    (project / blocked).write_text("x\n")
    assert main(["pipeline", "--local", "--repo", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"{blocked}: a file where a folder goes (" in err and "move or delete it" in err
    assert "Traceback" not in err
    assert (project / blocked).read_text() == "x\n"
    assert not (project / "data").exists() and (blocked == "runs" or not (project / "runs").exists())


def test_a_stage_that_exits_0_without_its_outputs_fails_with_70_and_is_recorded(project: Path, capsys, monkeypatch):
    """A new user's trial: `soil-trainer --help` as prepare's command exited 0 and wrote nothing; DVC's commit
    then crashed the driver (exit 70, a traceback) and no run.json was written."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("SOILCI_LOCAL_PRELOAD", "0")  # the help alone: no preload server for it
    spec = yaml.safe_load((project / "dvc.yaml").read_text())
    spec["stages"]["prepare"]["cmd"] = "soil-trainer --help"
    (project / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["pipeline", "--local", "--repo", str(project)]) == 70
    err = capsys.readouterr().err
    assert "stage 'prepare' exited 0 but did not write data/reference.parquet, " in err and "Traceback" not in err
    run = RunRecord.load(next((project / "runs").glob("*/run.json")))
    assert (run.exit_code, run.stopped_at, run.stages[0].outcome) == (70, "prepare", "failed")
    assert not (project / "dvc.lock").exists()


@pytest.mark.parametrize("tag", ["local\nRUN id", "a b", ".x"])
def test_build_refuses_an_image_tag_outside_dockers_grammar_before_asking_the_engine(tag, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["build", "drift", "--tag", tag, "--quiet"]) == 2
    assert f"image tag {tag!r} (--tag or SOILCI_IMAGE_TAG) does not match" in capsys.readouterr().err


def test_outputs_committed_to_git_are_refused_before_any_stage_runs(tmp_path, capsys):
    """A project that once committed results by hand: exit 2 with the fix, not DVC's crash after a stage ran."""
    root = copy_project(tmp_path / "project", library=False, pr_batch=False)
    (root / "metrics").mkdir()
    (root / "metrics" / "metrics.json").write_text("{}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["add", "-f", "metrics"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    assert main(["pipeline", "--local", "--repo", str(root)]) == 2
    err = capsys.readouterr().err
    assert "metrics/metrics.json: committed to git, but DVC owns the pipeline's outputs" in err
    assert "git rm -r --cached metrics" in err
    assert not (root / "runs").exists() and not (root / "data").exists()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # The new-user trial: a typo in train was found only after prepare and drift had run.
        ("    cv_folds: 10              # inner", "    cv_fold: 10              # inner",
         "train.pls.cv_fold: Extra inputs are not permitted"),
        ("  seed: 2025", '  seed: "2025"', "train.seed: Input should be a valid integer (got '2025')"),
        ("  alias: staging", "  alias: latest", "register.alias: Value error, 'latest' is reserved by MLflow"),
        ("  rmse_max: null", "  rmse_max: -1", "evaluate.rmse_max: Input should be greater than 0"),
        ("  alpha: 0.025", "  alpha: 0.9", "drift.alpha: must be between 0.0001 and 0.5"),
        # The new-user trial: alpha 1e-300 ran the drift gate for 14 minutes (10^302 permutations asked).
        ("  alpha: 0.025", "  alpha: 1.0e-300", ("drift.alpha: must be between 0.0001 and 0.5: the gate's "
         "family-wise false-positive rate (services/drift/README.md, Params) (got 1e-300)")),
        ("\ntrain:", "\ntrian:", "trian: not a section any stage reads (did you mean 'train'?)"),
    ],
)
def test_a_bad_key_in_any_params_section_exits_2_naming_its_path_before_any_stage_runs(
    project: Path, capsys, old, new, message
):
    _set(project / "params.yaml", old, new)
    assert main(["pipeline", "--local", "--repo", str(project)]) == 2
    err = capsys.readouterr().err
    assert message in err and "params.yaml: 1 problem(s), nothing was run" in err
    assert not (project / "runs").exists() and not (project / "data").exists()


def test_every_params_problem_is_named_at_once(project: Path, capsys):
    _set(project / "params.yaml", "  seed: 2025", "  seed: x\n  sed: 1")
    _set(project / "params.yaml", "  on_drift: fail", "  on_drift: maybe")
    assert main(["pipeline", "--local", "--repo", str(project)]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err and "drift.on_drift" in err and "train.seed" in err and "train.sed" in err


def _fake_soilci_metadata(site: Path, *requires: str) -> None:
    """A `soilci` distribution's metadata on ``site`` (put first on sys.path) with these Requires-Dist lines."""
    info = site / "soilci-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.3", "Name: soilci", "Version: 0.1.0",
                                              "Provides-Extra: local", *(f"Requires-Dist: {r}" for r in requires)])
                                   + "\n")


def test_missing_requirements_walks_the_extra_and_its_requirements_markers_evaluated(tmp_path, monkeypatch):
    from soilci.pipeline.requirements import missing_requirements

    _fake_soilci_metadata(
        tmp_path, "no-such-base-dist", "no-such-dist-a; extra == 'local'", "soil-drift[files]; extra == 'local'",
        "no-such-dist-b; extra == 'other'", "no-such-dist-c; sys_platform == 'nonexistent-os' and extra == 'local'")
    monkeypatch.syspath_prepend(str(tmp_path))
    # soil-drift's files extra is installed; soilci's own (base) requirements are not the extra's business
    assert missing_requirements() == ["no-such-dist-a (needed by soilci)"]
    assert missing_requirements(extra="other") == ["no-such-dist-b (needed by soilci)"]


def test_local_without_the_local_extra_exits_3_naming_it_before_anything_is_written(
        project: Path, tmp_path: Path, capsys, monkeypatch):
    """As in the operator image, whose stages run only in their images: what --local needs is not installed."""
    _fake_soilci_metadata(tmp_path / "site", "soil-trainer; extra == 'local'", "no-such-dist; extra == 'local'")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert main(["pipeline", "--local", "--repo", str(project)]) == 3
    err = capsys.readouterr().err
    assert "no-such-dist (needed by soilci)" in err and "'local' extra" in err and "--extra local" in err
    assert "Traceback" not in err
    assert not (project / "runs").exists()  # refused before the run's folder or lock


def test_a_stages_exit_code_is_worded_by_its_meaning_not_as_a_crash():
    """The new-user trial: "drift crashed with exit code 2" for a clean refusal of a too-small batch."""
    assert exit_meaning(2) == "refused its input (exit 2: bad input or params)"
    assert exit_meaning(3) == "could not reach a service it needs (exit 3: unavailable)"
    assert exit_meaning(70) == "crashed (exit 70: an internal error, traceback in its log)"
    assert exit_meaning(137) == "was killed by SIGKILL (exit 137)"
    assert exit_meaning(9) == "failed (exit 9)" and exit_meaning(2, with_code=False) == "refused its input"
