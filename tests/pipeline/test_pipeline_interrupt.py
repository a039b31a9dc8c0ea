"""soilci pipeline stopped by a signal, or started twice in one tree.

The driver runs as its own process (as a user or a CI runner starts it) and is signalled (or met by a
second run) while a stage runs. The stages before it run their real commands. A local stage held open
writes part of an output (as a stage cut short mid-write leaves it), prints a marker line and sleeps, all
before its real command: its own work is not what these tests check (a real train first would cost
~9 CPU-s). A container stage's command must start with its soil-* program, so there the marker and
the sleep follow the real command (drift's, the cheapest after prepare). Either way the signal lands
during the stage, with its output on disk and a child process of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from soil_contracts.records import RunRecord
from tests.support import stop_group

BIN = Path(sys.executable).parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
MARKER = "soilci-test: the stage has written output; stage shell"


# A part of each held local stage's first output, as the stage writes it: train's a folder, prepare's a file.
PARTIAL = {"prepare": "data/reference.parquet", "train": "models/model/MLmodel"}


def hold_open(root: Path, stage: str = "train", *, after_work: bool = False) -> None:
    """Make ``stage`` write PARTIAL, print MARKER and its shell's pid (its process group), then sleep, all
    before its real command; with ``after_work`` (a container stage), print and sleep after it instead."""
    path = root / "dvc.yaml"
    spec = yaml.safe_load(path.read_text())
    hold = f'echo "{MARKER} $$" && sleep 600'
    if after_work:
        spec["stages"][stage]["cmd"] += f" && {hold}"
    else:
        partial = PARTIAL[stage]
        spec["stages"][stage]["cmd"] = (f"mkdir -p {Path(partial).parent} && echo partial > {partial} && {hold} && "
                                        f"{spec['stages'][stage]['cmd']}")
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def commit_all(root: Path) -> None:
    for args in (["add", "-A"], ["commit", "-qm", "main"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def start_driver(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "soilci"), "pipeline", "--repo", str(root), *args], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "SOILCI_STOP_TIMEOUT": "20", **(env or {})})


def wait_for_marker(root: Path, driver: subprocess.Popen, timeout: float = 600, stage: str = "train") -> int:
    """The stage shell's pid, once the stage's log has MARKER (the driver is in that stage, which sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (root / "runs").glob(f"*/{stage}.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(MARKER):
                    return int(line.split()[-1])
        if driver.poll() is not None:
            raise AssertionError(f"driver exited with {driver.returncode} before {stage}:\n{driver.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"{stage} never printed the marker")


def assert_recorded_as_interrupted(root: Path, signal_name: str, code: int, stage: str = "train") -> RunRecord:
    """run.json says interrupted at ``stage``; dvc.lock has the stages before it only, as recorded."""
    from soilci.pipeline import dvc

    order = ["prepare", "drift", "train", "evaluate"]
    before, after = order[:order.index(stage)], order[order.index(stage) + 1:]
    run = RunRecord.load(next((root / "runs").glob("*/run.json")))
    assert (run.exit_code, run.interrupted_by, run.stopped_at) == (code, signal_name, stage)
    assert [s.outcome for s in run.stages] == ["ran"] * len(before) + ["interrupted"] + ["not run"] * len(after)
    if stage == "train":
        assert not (root / "models" / "model").exists()  # train's partial output folder, never recorded, is gone
    if stage == "drift":
        assert not (root / "reports" / "drift.json").exists()  # drift's file, written but never recorded
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(before)
    # the earlier stages' outputs match dvc.lock; a rerun runs the interrupted stage again, not them
    assert set(dvc.changed_stages(root)) == {stage, *after}
    return run


@pytest.mark.slow
def test_sigterm_during_a_local_stage_stops_its_process_group_records_it_and_exits_143(project):
    hold_open(project)
    commit_all(project)
    driver = start_driver(project, "--local")
    try:
        stage_group = wait_for_marker(project, driver)
        os.kill(driver.pid, signal.SIGTERM)  # the driver only, as `kill PID` or a CI runner's cancel does
        out, _ = driver.communicate(timeout=120)
    finally:
        stop_group(driver)
    assert driver.returncode == 143, out
    with pytest.raises(ProcessLookupError):  # the stage's shell and its sleep are gone with it
        os.killpg(stage_group, 0)
    assert "interrupted by SIGTERM during train" in out
    assert_recorded_as_interrupted(project, "SIGTERM", 143)


@pytest.mark.docker
@pytest.mark.slow
def test_sigint_during_a_container_stage_stops_the_container_records_it_and_exits_130(project, docker_client):
    from soilci.pipeline.runners import PROJECT_LABEL

    hold_open(project, "drift", after_work=True)  # the second stage: a container stage, after one that ran
    commit_all(project)
    driver = start_driver(project)
    try:
        wait_for_marker(project, driver, timeout=900, stage="drift")  # may build the stage images first
        running = docker_client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}"})
        assert len(running) == 1
        os.kill(driver.pid, signal.SIGINT)  # as `kill -INT PID`; a terminal's Ctrl-C also reaches the driver only
        out, _ = driver.communicate(timeout=120)
    finally:
        stop_group(driver)
        for container in docker_client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
            container.remove(force=True)
    assert driver.returncode == 130, out
    assert docker_client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}) == []
    assert "interrupted by SIGINT during drift" in out
    run = assert_recorded_as_interrupted(project, "SIGINT", 130, "drift")
    assert run.mode == "containers"


@pytest.mark.slow
def test_a_second_run_in_the_same_tree_exits_3_naming_the_first_and_the_lock_dies_with_its_holder(project, capsys):
    from soilci.cli import main
    from soilci.pipeline.lock import TreeLock

    hold_open(project, "prepare")
    commit_all(project)
    first = start_driver(project, "--local")
    try:
        stage_group = wait_for_marker(project, first, stage="prepare")
        runs_before = sorted((project / "runs").iterdir())
        lock_before = (project / "dvc.lock").read_bytes() if (project / "dvc.lock").exists() else None

        assert main(["pipeline", "--local", "--repo", str(project)]) == 3
        err = capsys.readouterr().err
        assert f"another soilci pipeline run is using this working tree: pid {first.pid}" in err
        assert "started 20" in err and f"kill -TERM {first.pid}" in err
        assert sorted((project / "runs").iterdir()) == runs_before  # the second run wrote nothing
        assert ((project / "dvc.lock").read_bytes() if (project / "dvc.lock").exists() else None) == lock_before
        assert first.poll() is None  # and left the first one alone

        os.killpg(first.pid, signal.SIGKILL)  # a holder killed outright: the kernel drops its lock
        first.wait(timeout=60)
    finally:
        stop_group(first)
        with contextlib.suppress(NameError, ProcessLookupError):  # its stage, in a session of its own
            os.killpg(stage_group, signal.SIGKILL)
    lock = TreeLock(project)
    assert lock.acquire().pid == os.getpid()
    lock.release()


def test_a_signal_outside_a_stage_waits_for_the_step_and_a_second_one_does_not(capsys):
    from soil_contracts.errors import Interrupted
    from soilci.pipeline.interrupt import InterruptGuard

    before = signal.getsignal(signal.SIGTERM)
    with InterruptGuard() as guard:
        os.kill(os.getpid(), signal.SIGTERM)  # held: e.g. dvc commit is writing dvc.lock
        time.sleep(0.05)
        assert guard.pending == signal.SIGTERM
        assert "stopping after this step" in capsys.readouterr().err
        with pytest.raises(Interrupted) as held:
            guard.check()
        assert held.value.exit_code == 143 and held.value.signal_name == "SIGTERM"
        with pytest.raises(Interrupted) as second:
            os.kill(os.getpid(), signal.SIGINT)  # a second signal is not held
            time.sleep(1)
        assert second.value.exit_code == 143  # the first signal decides the exit code
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_a_signal_inside_an_interruptible_block_raises_at_once():
    from soil_contracts.errors import Interrupted
    from soilci.pipeline.interrupt import InterruptGuard

    with InterruptGuard() as guard, pytest.raises(Interrupted) as exc, guard.interruptible():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert exc.value.exit_code == 130


def test_a_closed_terminal_sighup_stops_the_run_as_sigint_and_sigterm_do():
    """The new-user trial: SIGHUP (the terminal closed) killed the driver with 129 and no run.json. It goes
    through the same guard now: the stage is stopped and the run recorded, exit 129."""
    from soil_contracts.errors import Interrupted
    from soilci.pipeline.interrupt import InterruptGuard

    before = signal.getsignal(signal.SIGHUP)
    with InterruptGuard() as guard, pytest.raises(Interrupted) as exc, guard.interruptible():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1)
    assert exc.value.exit_code == 129 and exc.value.signal_name == "SIGHUP"
    assert signal.getsignal(signal.SIGHUP) == before
