"""Fixtures shared by every test folder: real data, real images, a real MLflow server."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from soil_contracts.threads import POOL_VARIABLES

# One BLAS/OpenMP thread per test process, as the stages have by default (soil_contracts.threads): the
# suite runs three xdist workers on two cores beside stage processes and containers, where each worker's
# OpenBLAS threads spin waiting for cores the others hold. Measured on 2 idle cores: twelve domain tests
# (services/trainer/tests/test_domain.py) took 57 s of CPU and 34 s with the default pools, 20 s and 21 s
# with one thread. scripts/test.sh sets the variables before the workers start; these lines cover a bare
# `pytest` (pools not yet loaded read them) and pytest_configure limits pools a plugin loaded already.
for _name in POOL_VARIABLES:
    os.environ.setdefault(_name, "1")

# DVC binds its log handlers to sys.stdout/stderr on import: import it now, with the session's streams,
# not first inside a capsys test whose streams close after it (a later DVC warning then fails a pull).
import dvc  # noqa: F401
import pytest

from tests.support import REPO_ROOT, alive, copy_project, free_port, stop_group, wait_for_http

VENV_BIN = Path(sys.executable).parent

# Folders whose tests share a costly session fixture of their own conftest (a trained workspace, a live
# model API, published images): under pytest-xdist each runs on one worker, so that fixture is built once.
SHARED_FOLDERS = ("services/model-api/tests", "tests/delivery", "services/trainer/tests", "tests/report")
# Under xdist these start first: the compose stack is the longest chain of waits, the folders the largest units.
FIRST = ("tests/compose/test_compose_stack.py", *SHARED_FOLDERS)


def pytest_configure(config):
    """Limit the BLAS/OpenMP pools already loaded to the variables above (threadpoolctl, for the session)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]))


def xdist_scope(nodeid: str) -> str:
    """The unit pytest-xdist gives one worker: the test's module, or its SHARED_FOLDERS folder."""
    path = nodeid.split("::", 1)[0]
    return next((f for f in SHARED_FOLDERS if path.startswith(f + "/")), path)


def pytest_collection_modifyitems(config, items):
    """On xdist workers, order the collection FIRST-units first (stable otherwise); every worker sorts the
    same way, and scripts/test.sh keeps that order (`--no-loadscope-reorder`). Serial runs keep theirs."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {unit: i for i, unit in enumerate(FIRST)}
        items.sort(key=lambda item: rank.get(xdist_scope(item.nodeid), len(FIRST)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` with SHARED_FOLDERS as units (xdist's own scope is the module)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FolderScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return FolderScopeScheduling(config, log)


@contextlib.contextmanager
def xdist_run_lock(name: str):
    """Hold a file lock shared by the pytest-xdist workers of this run (no lock without xdist).

    For one-time work such as image builds: two workers building the same new layers at once both pay
    for them; one after the other, the second takes them from the cache.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        yield
        return
    from filelock import FileLock

    with FileLock(Path(tempfile.gettempdir()) / f"soilci-tests-{run}-{name}.lock"):
        yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """The real prepare stage's outputs for the demo library plus a PR batch (fold 3).

    reference.parquet: 322 rows, incoming.parquet: 46, training.parquet: 368, benchmark.parquet: 92.
    """
    from soil_trainer.cli import main as trainer_main

    project = copy_project(tmp_path_factory.mktemp("prepared"))
    out = project / "data"
    assert trainer_main(["prepare", "--params", str(project / "params.yaml"), "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def docker_client():
    from soilci.images import docker_client as connect

    try:
        return connect()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def built_images(docker_client):
    """All three service images, built once per session from the working tree (layers cached).

    They carry a tag of this session's own: sessions of other work trees on the same engine build
    ``soil-<service>:local`` from other sources, and a shared tag would let a test run their image.
    The tags are removed at the end; the layers stay for the next build's cache.
    """
    import secrets

    from docker.errors import DockerException

    from soilci.images import SERVICES, build_image

    tag = f"test-{os.getpid()}-{secrets.token_hex(3)}"
    with xdist_run_lock("built-images"):  # one worker builds the new layers, the others take them from the cache
        built = {svc: build_image(svc, client=docker_client, tag=tag).tag for svc in SERVICES}
    yield built
    for name in built.values():
        try:
            docker_client.images.remove(name, noprune=True)
        except DockerException:  # still used by a container another fixture has not removed yet
            pass


def start_mlflow_server(root: Path) -> tuple[subprocess.Popen, str]:
    """Start ``mlflow server`` (SQLite backend, artifacts on disk, log in ``root``) on a loopback port.

    Returns the process (its own process group) and its URL once ``/health`` answers. RuntimeError with
    the end of its log if it does not come up.
    """
    port = free_port()
    with open(root / "server.log", "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"), "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=root,
            # As the soil-mlflow image runs it: without MLflow's GenAI job runner (deploy/mlflow/Dockerfile).
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,  # its own process group: stopping it stops the workers it spawns too
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=300, proc=proc)
    except Exception:  # noqa: BLE001 - any failure: stop the server and show its log
        stop_group(proc)
        raise RuntimeError((root / "server.log").read_text()[-3000:])
    return proc, url


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The URL of a real ``mlflow server`` (see ``start_mlflow_server``), one for the whole run.

    Under pytest-xdist the first worker that asks starts it and the others use it: each start costs
    about 13 CPU-seconds (MLflow imported twice, the SQLite schema migrated). The last worker to end
    its session stops it (``pytest_sessionfinish``). Tests that share it register models under names
    of their own.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        proc, url = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
        yield url
        stop_group(proc)
        return
    with xdist_run_lock("mlflow-server"):
        state = shared_state(tmp_path_factory)
        if "mlflow" not in state:
            root = tmp_path_factory.getbasetemp().parent / "mlflow"
            root.mkdir()
            proc, url = start_mlflow_server(root)
            STARTED.append(proc)  # this process's child: reaped when stopped
            state["mlflow"] = {"url": url, "group": proc.pid}
            save_shared_state(tmp_path_factory, state)
    yield state["mlflow"]["url"]


STARTED: list[subprocess.Popen] = []


def shared_state(factory) -> dict:
    """``state.json`` in the run's base folder, which this run's pytest-xdist workers share (hold the lock)."""
    path = factory.getbasetemp().parent / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"workers": {}}


def save_shared_state(factory, state: dict) -> None:
    (factory.getbasetemp().parent / "state.json").write_text(json.dumps(state))


def pytest_sessionstart(session):
    """Each pytest-xdist worker says it runs (its pid), so the last one to end stops the shared MLflow server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        with xdist_run_lock("mlflow-server"):
            state = shared_state(session.config._tmp_path_factory)
            state["workers"][worker] = {"pid": os.getpid(), "done": False}
            save_shared_state(session.config._tmp_path_factory, state)


def pytest_sessionfinish(session):
    """The last pytest-xdist worker to end (the others done, or dead) stops the shared MLflow server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    factory = session.config._tmp_path_factory
    with xdist_run_lock("mlflow-server"):
        state = shared_state(factory)
        state["workers"][worker]["done"] = True
        # A worker that has not started yet finds no server and starts one of its own.
        last = all(w["done"] or not alive(w["pid"]) for w in state["workers"].values())
        server = state.pop("mlflow", None) if last else None
        save_shared_state(factory, state)
    if server is None:
        return
    # This process's child, or one of a worker that has ended.
    stop_group(STARTED.pop() if STARTED else server["group"])


