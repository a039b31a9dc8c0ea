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
    with httpx.Client(timeout=10) as client:  # one client: a bare httpx.get loads the CA bundle each poll
        while True:
            ready = client.get(f"{url}/readyz")
            if ready.status_code == 200 or time.monotonic() > deadline:
                return ready
            time.sleep(0.3)


@pytest.fixture(scope="module")
def served(docker_client, built_images, model_dir):
    """The image serving a read-only mounted model as the Deployment runs it: {'container', 'url', 'limits'}.

    Non-root on a read-only root filesystem, under the Deployment's memory and CPU limits, no capabilities,
    restarted on failure (a restart would show in RestartCount). Both tests of this module use the one
    container, the plain requests first, then the oversized bodies and the burst.
    """
    limits = deployment_limits()
    memory = int(quantity(limits["memory"]))
    container = docker_client.containers.run(
        built_images["model-api"], detach=True, read_only=True, user="10001:10001", tmpfs={"/tmp": "rw,size=64m"},
        mem_limit=memory, memswap_limit=memory, nano_cpus=int(quantity(limits["cpu"]) * 1e9), cap_drop=["ALL"],
        restart_policy={"Name": "on-failure"}, labels={"org.soilci.test": "model-api-image"},
        environment={"MODEL_DIR": "/models/model", "MODEL_API_SLOT": "blue", "MODEL_API_IMAGE_TAG": "sha-feed123"},
        volumes={str(model_dir): {"bind": "/models/model", "mode": "ro"}},
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    try:
        wait_healthy(container)
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        yield {"container": container, "url": f"http://127.0.0.1:{port}", "limits": limits}
    finally:
        container.remove(force=True)


def test_image_serves_a_read_only_mounted_model_as_non_root(docker_client, built_images, served, benchmark):
    image = docker_client.images.get(built_images["model-api"])
    container, url = served["container"], served["url"]
    ready = wait_ready(url)  # healthy means alive; the model may still be loading
    info = httpx.get(f"{url}/v1/model", timeout=10).json()
    resp = httpx.post(f"{url}/v1/predict", json={"spectra": benchmark.spectra.tolist()}, timeout=30)
    drift = httpx.get(f"{url}/v1/drift", timeout=120)  # the drift gate's core runs in the image
    docs_js = httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", timeout=10)  # the offline docs' assets
    redoc_js = httpx.get(f"{url}/docs-assets/redoc.standalone.js", timeout=10)
    memory = container.stats(stream=False)["memory_stats"].get("usage", 0)
    uid = container.exec_run("id -u").output.decode().strip()

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


def deployment_limits() -> dict[str, str]:
    """The model-api container's resource limits in the kustomize base Deployment (e.g. memory 768Mi)."""
    import yaml

    from tests.support import REPO_ROOT

    deployment = yaml.safe_load((REPO_ROOT / "deploy/kustomize/base/deployment.yaml").read_text())
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "model-api"]
    return container["resources"]["limits"]


def quantity(value: str) -> float:
    """A Kubernetes quantity (768Mi, 1, 500m) as a number of bytes or CPUs."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def chunked(body: bytes, size: int = 1 << 20):
    for i in range(0, len(body), size):
        yield body[i:i + size]


def test_no_body_or_burst_of_bodies_gets_the_container_oom_killed(served, benchmark):
    """The reproducers' bodies (api_bad_requests) against the image under the Deployment's own limits.

    Before the body limit was derived and counted, one 50 MB spectrum or 24 MB of ``[],`` got the
    container OOM-killed at 768Mi.
    """
    import asyncio
    import json

    container, url, limits = served["container"], served["url"], served["limits"]
    assert wait_ready(url).status_code == 200
    info = httpx.get(f"{url}/v1/model", timeout=10).json()
    limit, max_batch = info["max_body_bytes"], info["max_batch"]
    under = limit - 1024
    bodies = {  # name: (body, streamed without a Content-Length)
        "50 MB, one long spectrum": (b'{"spectra": [[' + b"1.0," * 12_500_000 + b"1.0]]}", False),
        "50 MB, one long spectrum, streamed": (b'{"spectra": [[' + b"1.0," * 12_500_000 + b"1.0]]}", True),
        "24 MB of []": (b'{"spectra": [[' + b"[]," * 8_000_000 + b"[]]]}", False),
        "[] up to the limit, streamed": (b'{"spectra": [[' + b"[]," * (under // 3) + b"[]]]}", True),
        "{} up to the limit": (b'{"spectra": [[' + b"{}," * (under // 3) + b"{}]]}", False),
        "1.0 up to the limit": (b'{"spectra": [[' + b"1.0," * (under // 4) + b"1.0]]}", False),
    }
    headers = {"Content-Type": "application/json"}
    single = {}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        for name, (body, stream) in bodies.items():
            single[name] = client.post("/v1/predict", content=chunked(body) if stream else body).status_code

    # A burst: full batches by band name (valid, ~60% of the limit) and bodies of [] at the limit, at once.
    rows = np.resize(benchmark.spectra, (max_batch, len(benchmark.bands)))
    full = json.dumps({"spectra": [dict(zip(benchmark.bands, r.tolist(), strict=True)) for r in rows]}).encode()
    burst_bodies = [full, bodies["[] up to the limit, streamed"][0]] * 4

    async def burst():
        async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
            return await asyncio.gather(*(client.post("/v1/predict", content=b) for b in burst_bodies))

    burst_status = [r.status_code for r in asyncio.run(burst())]
    after = httpx.post(f"{url}/v1/predict", json={"spectra": benchmark.spectra.tolist()}, timeout=60)
    container.reload()
    state = container.attrs["State"]
    restarts = container.attrs["RestartCount"]
    used = container.stats(stream=False)["memory_stats"].get("usage", 0)

    assert single == dict.fromkeys(bodies, 413), single
    assert burst_status == [200, 413] * 4, burst_status
    assert (state["OOMKilled"], state["Running"], restarts) == (False, True, 0), state
    assert after.status_code == 200
    np.testing.assert_allclose(after.json()["predictions"], benchmark.expected, rtol=0, atol=1e-9)
    print(f"\nmodel-api under {limits['memory']}: body limit {limit / 2**20:.1f} MiB; "
          f"memory after the burst {used / 2**20:.0f} MiB")
