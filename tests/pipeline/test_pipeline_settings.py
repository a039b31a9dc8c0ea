"""soilci.pipeline.settings: the driver's environment settings are checked before a run writes anything."""

from __future__ import annotations

import pytest

from soilci.cli import main
from soilci.errors import ConfigError
from soilci.pipeline.settings import stage_limits, stop_timeout

WRITTEN = ("runs", "data", "reports", "models", "dvc.lock")


def test_stage_limits_take_dockers_memory_format_and_a_positive_cpu_count():
    assert stage_limits({}) == ("4g", 2.0)
    assert stage_limits({"SOILCI_STAGE_MEMORY": "512m", "SOILCI_STAGE_CPUS": "1.5"}) == ("512m", 1.5)
    assert stage_limits({"SOILCI_STAGE_MEMORY": "8589934592", "SOILCI_STAGE_CPUS": " 3 "}) == ("8589934592", 3.0)
    for memory in ("lots", "4gb", "-1g", "0", "1k", "4 g"):
        with pytest.raises(ConfigError, match=f"SOILCI_STAGE_MEMORY={memory!r}: expected Docker's memory format"):
            stage_limits({"SOILCI_STAGE_MEMORY": memory})
    for cpus in ("two", "0", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match=f"SOILCI_STAGE_CPUS={cpus!r}: expected a number of CPUs above 0"):
            stage_limits({"SOILCI_STAGE_CPUS": cpus})


def test_stop_timeout_is_a_finite_number_of_seconds(monkeypatch):
    monkeypatch.delenv("SOILCI_STOP_TIMEOUT", raising=False)
    assert stop_timeout() == 10.0
    monkeypatch.setenv("SOILCI_STOP_TIMEOUT", "2.5")
    assert stop_timeout() == 2.5
    for value in ("abc", "-1", "nan", "inf"):
        monkeypatch.setenv("SOILCI_STOP_TIMEOUT", value)
        with pytest.raises(ConfigError, match=f"SOILCI_STOP_TIMEOUT={value!r}: expected a number of seconds >= 0"):
            stop_timeout()


@pytest.mark.parametrize(("variable", "value", "args"), [
    # The new-user trial: accepted at the start, then a ValueError traceback (exit 70) at the first Ctrl-C,
    # with the stage left running and no run.json.
    ("SOILCI_STOP_TIMEOUT", "abc", ["--local"]),
    ("SOILCI_STOP_TIMEOUT", "-5", []),
    ("SOILCI_STAGE_MEMORY", "lots", []),
    ("SOILCI_STAGE_CPUS", "0", []),
])
def test_a_bad_setting_stops_the_run_with_exit_2_before_anything_is_written(project, monkeypatch, capsys,
                                                                          variable, value, args):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # refused before any engine is asked
    monkeypatch.setenv(variable, value)
    assert main(["pipeline", *args, "--repo", str(project)]) == 2
    assert f"{variable}={value!r}" in capsys.readouterr().err
    assert not [name for name in WRITTEN if (project / name).exists()]


def test_a_base_that_is_no_revision_exits_2_before_a_run_folder_is_made(project, monkeypatch, capsys):
    """The new-user trial: ``--base nosuch`` printed "logs in runs/<id>/", left that folder empty, then exited 2."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["pipeline", "--local", "--base", "nosuch", "--repo", str(project)]) == 2
    err = capsys.readouterr().err
    assert "--base nosuch: not a revision of" in err and "logs in runs/" not in err
    assert not [name for name in WRITTEN if (project / name).exists()]


def test_an_empty_base_exits_2_not_the_default(project, monkeypatch, capsys):
    """The second trial: ``--base ""`` fell back to origin/main without a word."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["pipeline", "--local", "--base", "", "--repo", str(project)]) == 2
    assert "--base '': empty; name a revision" in capsys.readouterr().err
    assert not [name for name in WRITTEN if (project / name).exists()]
