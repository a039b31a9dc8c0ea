"""soilci library: import a lab's export into a real git + DVC project, list it, and refuse bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from soilci.cli import main
from tests.support import copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project", pr_batch=False)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    return root


def export(prepared_data: Path, path: Path, *, unit_scale: float = 1.0) -> Path:
    """Fold 3 as a spectrometer export: numeric wavelength headers, reflectance as a fraction."""
    rows = pd.read_parquet(prepared_data / "incoming.parquet")
    bands = [c for c in rows.columns if c.startswith("wl_")]
    out = rows[["sample_id", "SOC_target"]].assign(sample_id=rows.sample_id + "-lab")
    spectra = rows[bands].rename(columns=lambda b: b.removeprefix("wl_")) / 100 * unit_scale
    pd.concat([out, spectra], axis=1).to_csv(path, index=False)
    return path


def import_args(source: Path, project: Path, *extra: str) -> list[str]:
    return ["library", "import", str(source), "--batch", "lab-2024-05", "--instrument", "ASD FieldSpec 4",
            "--lab", "Soil lab A", "--date", "2024-05", "--axis", "wavelength_nm",
            "--scale", "reflectance_fraction", "--repo", str(project), *extra]


def test_import_writes_a_dvc_tracked_batch_and_list_shows_it(project, prepared_data, tmp_path, capsys):
    source = export(prepared_data, tmp_path / "lab-2024-05.csv")
    assert main(import_args(source, project, "--target", "SOC_target=%")) == 0
    batch = project / "library" / "batches" / "lab-2024-05"
    assert sorted(p.name for p in batch.iterdir()) == [".gitignore", "batch.yaml", "spectra.parquet",
                                                       "spectra.parquet.dvc"]
    err = capsys.readouterr().err
    assert "46 samples, 430 bands (wavelength_nm, reflectance_percent)" in err and "next: git add" in err
    assert main(["library", "list", "--repo", str(project)]) == 0
    assert "lab-2024-05" in capsys.readouterr().out


def test_list_shows_long_instrument_names_and_dates_in_full(project, prepared_data, tmp_path, capsys):
    source = export(prepared_data, tmp_path / "lab-2024-05.csv")
    args = import_args(source, project, "--target", "SOC_target=%", "--no-dvc")  # listing needs no DVC
    args[args.index("--instrument") + 1] = "ASD FieldSpec 4 Hi-Res NG with contact probe"
    args[args.index("--date") + 1] = "2024-05-02 to 2024-05-17"
    assert main(args) == 0
    capsys.readouterr()
    assert main(["library", "list", "--repo", str(project)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("lab-2024-05"))
    assert "ASD FieldSpec 4 Hi-Res NG with contact probe" in line and "2024-05-02 to 2024-05-17" in line


@pytest.mark.parametrize(
    ("target", "scale", "message"),
    [
        ("SOC_target=g/kg", 1.0, "the library's models predict SOC_target in '%'"),
        ("SOC_target", 1.0, "expected COLUMN=UNIT"),
        ("SOC_target=%", 100.0, "look like reflectance percent"),
    ],
)
def test_bad_imports_exit_2_and_write_nothing(project, prepared_data, tmp_path, capsys, target, scale, message):
    source = export(prepared_data, tmp_path / "lab.csv", unit_scale=scale)
    assert main(import_args(source, project, "--target", target)) == 2
    assert message in capsys.readouterr().err
    assert not (project / "library" / "batches" / "lab-2024-05").exists()


def test_library_base_lists_the_base_revisions_batches(project, capsys):
    assert main(["library", "base", "--base", "main", "--repo", str(project)]) == 2  # no commit yet
    assert "--base main: not a revision" in capsys.readouterr().err
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=project,
                   check=True)
    assert main(["library", "base", "--base", "main", "--repo", str(project)]) == 0
    listing = (project / ".soilci" / "base.json").read_text()
    assert '"ssp460-campaign-1"' in listing


def test_a_drift_acceptance_names_the_content_it_was_given_for(project, prepared_data, tmp_path, capsys):
    """soilci library accept writes reason, who and the batch's content hash; changed data voids it."""
    source = export(prepared_data, tmp_path / "lab-2024-05.csv")
    assert main(import_args(source, project, "--target", "SOC_target=%", "--no-dvc")) == 0
    batch = project / "library" / "batches" / "lab-2024-05"
    meta = yaml.safe_load((batch / "batch.yaml").read_text())
    assert main(["library", "accept", "lab-2024-05", "--reason", "new detector; offset checked",
                 "--by", "ana.lead@example.org", "--repo", str(project)]) == 0
    accepted = yaml.safe_load((batch / "batch.yaml").read_text())["drift_acceptance"]
    assert accepted == {"reason": "new detector; offset checked", "by": "ana.lead@example.org",
                        "content_sha256": meta["content_sha256"]}

    # New data under the same batch.yaml (its content hash updated by hand, the acceptance left):
    # every read refuses it, naming both contents, instead of carrying the acceptance over.
    rows = pd.read_parquet(batch / "spectra.parquet")
    rows.loc[0, "wl_500"] += 1.0
    rows.to_parquet(batch / "spectra.parquet", index=False)
    from soil_trainer.library.content import content_sha256

    text = (batch / "batch.yaml").read_text().replace(meta["content_sha256"], content_sha256(rows), 1)
    (batch / "batch.yaml").write_text(text)
    capsys.readouterr()
    assert main(["library", "list", "--repo", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"drift_acceptance was given for content {meta['content_sha256'][:12]}" in err
    assert "re-accept it (soilci library accept)" in err

    # A re-import (--replace) starts without an acceptance; accepting needs a reason and a name.
    assert main(import_args(source, project, "--target", "SOC_target=%", "--no-dvc", "--replace")) == 0
    assert yaml.safe_load((batch / "batch.yaml").read_text())["drift_acceptance"] is None
    assert main(["library", "accept", "lab-2024-05", "--by", "ana", "--repo", str(project)]) == 2
    assert main(["library", "accept", "no-such-batch", "--reason", "ok then", "--by", "ana",
                 "--repo", str(project)]) == 2
    assert "no such batch" in capsys.readouterr().err


def test_impossible_target_values_exit_2_naming_the_samples_and_write_nothing(project, prepared_data, tmp_path,
                                                                              capsys):
    source = export(prepared_data, tmp_path / "lab.csv")
    rows = pd.read_csv(source)
    rows.loc[0, "SOC_target"], rows.loc[5, "SOC_target"] = 1e6, -3.0  # the new-user trial's values
    rows.to_csv(source, index=False)
    assert main(import_args(source, project, "--target", "SOC_target=%")) == 2
    err = capsys.readouterr().err
    assert "2 target value(s) impossible for their unit: SOC_target in '%'" in err
    assert f"{rows.sample_id[0]} (row 1) = 1e+06" in err and f"{rows.sample_id[5]} (row 6) = -3" in err
    assert not (project / "library" / "batches" / "lab-2024-05").exists()


def dvc_checkout(project: Path, target: str) -> None:
    """``dvc checkout <target>`` in the project, through DVC's own Repo in process (no interpreter to start)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        repo.checkout(targets=[str(project / target)])


def git_commit(project: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], cwd=project,
                   check=True)


def test_a_spectra_file_left_by_git_checkout_without_its_batch_is_refused_everywhere(project, prepared_data,
                                                                                     tmp_path, capsys, monkeypatch):
    """The trial's input: a batch imported on a branch, then 'git checkout main' leaves its DVC-ignored
    spectra.parquet behind without batch.yaml; 'git add library' committed it and every run skipped it (🟢)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # --local never asks for an engine
    git_commit(project, "main: the demo library")
    subprocess.run(["git", "checkout", "-qb", "lab"], cwd=project, check=True)
    assert main(import_args(export(prepared_data, tmp_path / "lab.csv"), project, "--target", "SOC_target=%")) == 0
    git_commit(project, "lab: batch lab-2024-05")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=project, check=True)
    leftover = project / "library" / "batches" / "lab-2024-05"
    assert [p.name for p in leftover.iterdir()] == ["spectra.parquet"]  # what git checkout leaves
    git_commit(project, "main: git add library, as the README says")
    capsys.readouterr()

    other = import_args(export(prepared_data, tmp_path / "other.csv"), project, "--target", "SOC_target=%")
    other[other.index("--batch") + 1] = "other"
    commands = [["library", "list", "--repo", str(project)], other,
                ["pipeline", "--local", "--base", "main", "--repo", str(project)]]
    for args in commands:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "library/batches/lab-2024-05/: not a complete batch, batch.yaml missing" in err, err
        assert "rm -r library/batches/lab-2024-05" in err and "--batch lab-2024-05" in err, err
    assert not (project / "library" / "batches" / "other").exists()
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())  # refused before any stage


def test_after_a_branch_switch_another_branchs_spectra_are_named_as_such_and_dvc_checkout_mends_it(
        project, prepared_data, tmp_path, capsys):
    """The trial's finding: after 'git checkout', importing a new batch failed with a column check about another
    batch, whose spectra.parquet (left by DVC as it was) belonged to the other branch's batch.yaml."""
    git_commit(project, "main: the demo library")
    source = export(prepared_data, tmp_path / "lab.csv")
    both = tmp_path / "lab-ph.csv"
    pd.read_csv(source).assign(pH_target=6.5).to_csv(both, index=False)
    subprocess.run(["git", "checkout", "-qb", "soc-only"], cwd=project, check=True)
    assert main(import_args(source, project, "--target", "SOC_target=%")) == 0
    git_commit(project, "soc-only: lab-2024-05 with SOC")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=project, check=True)
    subprocess.run(["rm", "-r", "library/batches/lab-2024-05"], cwd=project, check=True)
    subprocess.run(["git", "checkout", "-qb", "with-ph"], cwd=project, check=True)
    assert main(import_args(both, project, "--target", "SOC_target=%", "--target", "pH_target=pH")) == 0
    git_commit(project, "with-ph: lab-2024-05 with SOC and pH")
    subprocess.run(["git", "checkout", "-q", "soc-only"], cwd=project, check=True)  # leaves with-ph's spectra
    capsys.readouterr()

    other = import_args(export(prepared_data, tmp_path / "other.csv"), project, "--target", "SOC_target=%")
    other[other.index("--batch") + 1] = "other"
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "other.csv was not imported: the library's batch 'lab-2024-05', read to find duplicates" in err
    assert ("lab-2024-05/spectra.parquet: not the version spectra.parquet.dvc names" in err
            and "run 'dvc checkout" in err), err
    assert "pandera" not in err and "schema" not in err
    dvc_checkout(project, "library/batches/lab-2024-05/spectra.parquet")
    assert main(other) == 0


@pytest.mark.parametrize("batch", ["Lab_A", "../evil", "_lab", "lab a", "x" * 65])
def test_a_batch_id_that_cannot_name_its_folder_exits_2_before_the_file_is_read(project, tmp_path, capsys, batch):
    """The new-user trial: ``--batch Lab_A`` gave exit 70 and pydantic's traceback after reading the file."""
    args = import_args(tmp_path / "never-read.csv", project, "--target", "SOC_target=%")
    args[args.index("--batch") + 1] = batch
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"argument --batch: {batch!r} is not a batch id: 1 to 64 of a-z, 0-9" in err and "Traceback" not in err
    assert main(["library", "accept", batch, "--reason", "r", "--by", "b", "--repo", str(project)]) == 2
    assert "is not a batch id" in capsys.readouterr().err


def test_a_batch_named_benchmark_is_refused_as_the_benchmark_sets_name(project, prepared_data, tmp_path, capsys):
    """The new-user trial: ``--batch benchmark`` was accepted, and `library list` showed two rows 'benchmark'."""
    source = export(prepared_data, tmp_path / "lab.csv")
    args = import_args(source, project, "--target", "SOC_target=%")
    args[args.index("--batch") + 1] = "benchmark"
    assert main(args) == 2
    assert "--batch benchmark: that id names the benchmark set" in capsys.readouterr().err
    assert not (project / "library" / "batches" / "benchmark").exists()
