"""Fixtures shared by every test folder: real data, real images, a real MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# DVC binds its log handlers to sys.stdout/stderr on import: import it now, with the session's streams,
# not first inside a capsys test whose streams close after it (a later DVC warning then fails a pull).
import dvc  # noqa: F401
import pytest

from tests.support import REPO_ROOT, copy_project, free_port, stop_group, wait_for_http

VENV_BIN = Path(sys.executable).parent


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


