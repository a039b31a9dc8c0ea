"""Fixtures shared by every test folder: real data, real images, a real MLflow server."""

from __future__ import annotations

import contextlib
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

from tests.support import REPO_ROOT, copy_project, free_port, stop_group, wait_for_http

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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (SQLite backend, artifacts on disk) on a loopback port."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - open for the server's whole life, closed at teardown
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
        start_new_session=True,  # its own process group: teardown stops the workers it spawns too
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=300, proc=proc)
    except Exception:  # noqa: BLE001 - any failure: stop the server and show its log
        stop_group(proc)
        log.close()
        raise RuntimeError((root / "server.log").read_text()[-3000:])
    yield url
    stop_group(proc)
    log.close()


