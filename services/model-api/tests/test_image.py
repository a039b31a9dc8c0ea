"""The built image: non-root, read-only root filesystem, HEALTHCHECK, same predictions as the trainer."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.docker

IMAGE_SIZE_GOAL = 600e6


def wait_healthy(container, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] == "exited":
            raise AssertionError(f"container exited: {container.logs()[-2000:].decode()}")
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"not healthy after {timeout}s: {container.attrs['State'].get('Health')}")


def wait_ready(url: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        if ready.status_code == 200 or time.monotonic() > deadline:
            return ready
        time.sleep(0.3)


def test_image_serves_a_read_only_mounted_model_as_non_root(docker_client, built_images, model_dir, benchmark):
    image = docker_client.images.get(built_images["model-api"])
    container = docker_client.containers.run(
        image.id, detach=True, read_only=True, user="10001:10001", tmpfs={"/tmp": "rw,size=64m"},
        environment={"MODEL_DIR": "/models/model", "MODEL_API_SLOT": "blue", "MODEL_API_IMAGE_TAG": "sha-feed123"},
        volumes={str(model_dir): {"bind": "/models/model", "mode": "ro"}},
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    try:
        wait_healthy(container)
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        ready = wait_ready(url)  # healthy means alive; the model may still be loading
        info = httpx.get(f"{url}/v1/model", timeout=10).json()
        resp = httpx.post(f"{url}/v1/predict", json={"spectra": benchmark.spectra.tolist()}, timeout=30)
        drift = httpx.get(f"{url}/v1/drift", timeout=120)  # the drift gate's core runs in the image
        docs_js = httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", timeout=10)  # the offline docs' assets
        redoc_js = httpx.get(f"{url}/docs-assets/redoc.standalone.js", timeout=10)
        memory = container.stats(stream=False)["memory_stats"].get("usage", 0)
        uid = container.exec_run("id -u").output.decode().strip()
    finally:
        container.remove(force=True)

    assert ready.status_code == 200, ready.text
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["predictions"], benchmark.expected, rtol=0, atol=1e-9)
    assert all(r["in_domain"] is not None for r in resp.json()["results"])  # domain.json read in the image
    assert drift.status_code == 200 and drift.json()["status"] == "pass", drift.text
    assert drift.json()["window"]["rows"] == len(benchmark.spectra)
    assert docs_js.status_code == redoc_js.status_code == 200 and len(docs_js.content) > 100_000
    assert (info["slot"], info["image_tag"]) == ("blue", "sha-feed123")
    assert uid == "10001"
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert image.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD"
    print(f"\nsoil-model-api image {image.attrs['Size'] / 1e6:.0f} MB; container memory {memory / 2**20:.0f} MiB")
    assert image.attrs["Size"] < IMAGE_SIZE_GOAL
