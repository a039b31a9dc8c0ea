"""soilci.pipeline.dvc: the stage order and commands come from dvc.yaml, through DVC."""

from __future__ import annotations

from pathlib import Path

import pytest

from soilci.errors import ConfigError
from soilci.pipeline.dvc import Stage, load_stages


def test_stages_come_from_dvc_yaml_in_lineage_order_with_their_images(project: Path):
    stages = load_stages(project)
    assert [(s.name, s.service) for s in stages] == [
        ("prepare", "trainer"), ("drift", "drift"), ("train", "trainer"), ("evaluate", "trainer")]
    drift = stages[1]
    assert drift.cmd.startswith("soil-drift check data/reference.parquet data/incoming.parquet")
    assert "reports/drift.json" in drift.outs


def test_a_stage_whose_command_is_not_a_service_is_bad_input():
    with pytest.raises(ConfigError, match="stage 'x': cmd must start with a soil-<service> program"):
        _ = Stage("x", "python train.py", (), ()).service


def test_a_tree_without_dvc_yaml_is_bad_input(tmp_path: Path):
    with pytest.raises(ConfigError, match="dvc.yaml: not found"):
        load_stages(tmp_path)


def test_library_spectra_present_but_uncached_are_cached_not_pulled(project):
    """A fresh clone whose demo spectra were rebuilt outside DVC: cached, so push can send them."""
    from soilci.pipeline import dvc

    state = dvc.tracked_data(project)
    assert set(state) == {"library/benchmark/spectra.parquet.dvc",
                          "library/batches/ssp460-campaign-1/spectra.parquet.dvc"}
    assert {s for outs in state.values() for s in outs.values()} == {"not in cache"}
    assert "library/benchmark/spectra.parquet.dvc" not in dvc.changed_stages(project)  # not a stage
    dvc.cache_tracked(project, list(state))
    assert dvc.tracked_data(project) == {}


def settle(project: Path, run_dir: Path):
    """What a run does with the library's tracked spectra before its stages (soilci.pipeline.tracked)."""
    from soilci.pipeline.progress import Progress
    from soilci.pipeline.tracked import settle_tracked_data

    return settle_tracked_data(project, project, run_dir, Progress())


def test_library_spectra_missing_here_and_in_the_remote_are_bad_input_not_a_crash(project, tmp_path):
    """(Pulling them when the remote has them is the fresh-clone end-to-end test's.)"""
    (project / "library" / "benchmark" / "spectra.parquet").unlink()
    with pytest.raises(ConfigError, match="library/benchmark/spectra.parquet: tracked by DVC but neither here"):
        settle(project, tmp_path)


def test_library_spectra_of_another_version_than_their_dvc_file_names_are_bad_input(project, tmp_path):
    """After 'git checkout' DVC's files stay as they were: the spectra can be another branch's. DVC's status calls
    them "not in cache" when this version was never cached here, and caching them would rewrite the .dvc file."""
    import pandas as pd

    path = project / "library" / "benchmark" / "spectra.parquet"
    pd.read_parquet(path).head(10).to_parquet(path, index=False)
    with pytest.raises(ConfigError, match=r"library/benchmark/spectra.parquet: not the version spectra.parquet.dvc "
                                          r"names .* run 'dvc checkout"):
        settle(project, tmp_path)


def test_pull_says_what_it_fetched_and_wrote_and_when_there_was_nothing(project, tmp_path, capfd):
    """The run record's pull line counts DVC's own stats, not a bare "pulled" whatever happened; DVC's
    warnings (a first run's "No file hash info found" for each output dvc.lock lacks) go to the log."""
    import shutil

    from soilci.pipeline import dvc, remote

    dvc.cache_tracked(project, list(dvc.tracked_data(project)))
    remote.push(project, tmp_path / "push.log")
    spectra = project / "library" / "benchmark" / "spectra.parquet"
    spectra.unlink()
    shutil.rmtree(project / ".dvc" / "cache")  # as in a fresh clone: both tracked files come from the remote
    assert remote.pull(project, tmp_path / "pull.log") == "pulled: 2 files fetched, 1 file added"
    assert spectra.is_file()
    assert remote.pull(project, tmp_path / "pull.log") == "pulled: nothing to fetch or write"
    assert "No file hash info found" in (tmp_path / "pull.log").read_text()
    assert "No file hash info found" not in capfd.readouterr().err
