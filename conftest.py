"""Fixtures shared by every test folder: real data, real images, a real MLflow server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout}s ({last})")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """The default params' reference/benchmark/incoming Parquet files, made by the real prepare stage."""
    from soil_trainer.cli import main as trainer_main

    out = tmp_path_factory.mktemp("data")
    assert trainer_main(["prepare", "--params", str(REPO_ROOT / "params.yaml"), "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def docker_client():
    from soilci.images import docker_client as connect

    try:
        return connect()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def built_images(docker_client) -> dict[str, str]:
    """All three service images, built once per session from the working tree (layers cached)."""
    from soilci.images import SERVICES, build_image

    return {svc: build_image(svc, client=docker_client).tag for svc in SERVICES}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (SQLite backend, artifacts on disk) on a loopback port."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "w")
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
    except Exception:
        stop_group(proc)
        log.close()
        raise RuntimeError((root / "server.log").read_text()[-3000:])
    yield url
    stop_group(proc)
    log.close()


def stop_group(proc: subprocess.Popen) -> None:
    """Terminate a process started with ``start_new_session`` and everything it spawned."""
    import signal

    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # sweep workers that outlived the server process
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def copy_project(dest: Path) -> Path:
    """Copy the tracked project files (no venv, data or caches) to ``dest`` for isolated runs."""
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-co", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    for rel in files:
        src = REPO_ROOT / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest
