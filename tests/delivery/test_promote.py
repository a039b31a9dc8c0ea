"""soilci promote / rollback: refusals against a bare manifests repo; with Docker, real slots and MLflow.

The slots are each slot's rendered container spec running in Docker (the ``slots`` fixture, started once
for this module): first their probes must pass as the kubelet runs them, then promote and rollback run
against them."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from soilci.cli import main
from soilci.delivery.bump import bump
from soilci.delivery.overlay import LIVE_FILE, SLOTS, StagingOverlay
from soilci.delivery.promote import promote, rollback
from soilci.errors import GateRefused
from tests.delivery.support import (
    DOCKER_MODEL,
    IMAGE_A,
    IMAGE_B,
    NO_SERVICE,
    OVERLAY,
    host_url,
    log,
    request,
    switch_live_by_hand,
)
from tests.support import free_port, wait_for_http


def test_promote_refuses_a_preview_slot_without_a_release(repo, capsys):
    rc = main(
        ["promote", "--manifests-repo", repo, "--preview-url", NO_SERVICE, "--tracking-uri", NO_SERVICE]
    )
    assert rc == 1
    assert "green has no release in the manifests" in capsys.readouterr().err
    assert len(log(repo)) == 1


def test_promote_refuses_when_the_preview_pins_another_version_than_expected(repo):
    bump(repo, request(IMAGE_A))
    with pytest.raises(GateRefused, match="preview slot green pins soil-soc v7, not the expected v8"):
        promote(repo, preview_url=NO_SERVICE, tracking_uri=NO_SERVICE, expect_version="8")


def test_promote_refuses_when_the_preview_slot_does_not_answer(repo):
    bump(repo, request(IMAGE_A))
    with pytest.raises(GateRefused, match=r"green is not ready: GET http://127.0.0.1:9/readyz failed"):
        promote(repo, preview_url=NO_SERVICE, tracking_uri=NO_SERVICE)
    assert len(log(repo)) == 2


def test_rollback_refuses_when_the_previous_slot_was_bumped_since(repo):
    bump(repo, request(IMAGE_A))
    switch_live_by_hand(repo)  # green live, blue (unreleased) preview
    bump(repo, request(IMAGE_B))  # blue now runs v8, not what it ran when it was live
    with pytest.raises(GateRefused, match="blue was bumped since it was live"):
        rollback(repo, preview_url=NO_SERVICE, tracking_uri=NO_SERVICE)


def test_rollback_refuses_when_live_yaml_never_changed(repo):
    with pytest.raises(GateRefused, match="nothing to roll back"):
        rollback(repo, preview_url=NO_SERVICE, tracking_uri=NO_SERVICE)


def run_probe(base: str, probe: dict, ports: dict[str, int], *, budget: float | None = None) -> int:
    """Run an httpGet probe as the kubelet does (period, timeout, failure threshold); the status code."""
    get = probe["httpGet"]
    assert ports[get["port"]] == 8000  # the named port resolves to the container port
    period, timeout = probe.get("periodSeconds", 10), probe.get("timeoutSeconds", 1)
    tries = probe.get("failureThreshold", 3) if budget is None else max(1, int(budget / period))
    code = 0
    for _ in range(tries):
        try:
            code = httpx.get(f"{base}{get['path']}", timeout=timeout).status_code
        except httpx.HTTPError:
            code = 0
        if 200 <= code < 400:
            return code
        time.sleep(period)
    return code


@pytest.mark.docker
@pytest.mark.parametrize("slot", SLOTS)
def test_rendered_container_spec_runs_in_docker_and_its_probes_pass(slots, published, slot):
    running, url, spec = slots[slot]
    (main,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    startup = main["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert run_probe(url, startup, ports) == 200, running.logs()[-2000:].decode()
    # The kubelet keeps probing readiness; the model must load within the startup budget.
    assert run_probe(url, main["readinessProbe"], ports, budget=budget) == 200, running.logs()[
        -2000:
    ].decode()
    assert run_probe(url, main["livenessProbe"], ports) == 200
    served = httpx.get(f"{url}/v1/model", timeout=5).json()
    record = published["old" if slot == "blue" else "new"]
    assert (served["slot"], str(served["version"]), served["image_tag"]) == (
        slot,
        record.model_version,
        record.tag,
    )
    running.reload()
    assert running.attrs["Config"]["User"] == "10001:10001"
    assert running.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert running.status == "running"


def _ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def ready_slots(slots) -> dict:
    """``slots`` once both answer /readyz with 200, as a Service would only then route to them."""
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=2) as client:  # one client: a bare httpx.get loads the CA bundle each poll
        for _, url, _ in slots.values():
            while not _ready(client, url):
                assert time.monotonic() < deadline, f"{url} not ready after 120 s"
                time.sleep(0.5)
    return slots


@pytest.mark.docker
def test_promote_refuses_when_the_preview_slot_is_not_ready(
    manifests, published, docker_client, mlflow_server
):
    # The new image with no model where MODEL_DIR points: the process lives, /readyz says 503.
    broken = docker_client.containers.run(
        published["new"].image,
        command=["serve"],
        environment={"MODEL_DIR": "/nonexistent"},
        ports={"8000/tcp": ("127.0.0.1", None)},
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": ""},
        name=f"soilci-delivery-broken-{free_port()}",
        detach=True,
    )
    try:
        url = host_url(broken, 8000)
        wait_for_http(f"{url}/healthz", timeout=60)
        with pytest.raises(GateRefused, match=r"^green is not ready: GET .*/readyz answered 503"):
            promote(manifests, preview_url=url, tracking_uri=mlflow_server)
    finally:
        broken.remove(force=True)


@pytest.mark.docker
def test_promote_refuses_when_the_preview_serves_another_model_version(
    manifests, ready_slots, published, mlflow_server
):
    _, blue_url, _ = ready_slots["blue"]  # a preview Service still reaching the old pods
    old, new = published["old"], published["new"]
    with pytest.raises(
        GateRefused,
        match=(
            f"green serves model version {old.model_version}, but the manifests pin "
            f"{DOCKER_MODEL} v{new.model_version}"
        ),
    ):
        promote(manifests, preview_url=blue_url, tracking_uri=mlflow_server)


@pytest.mark.docker
def test_promote_then_rollback_restores_the_previous_selector_exactly(
    manifests, ready_slots, published, mlflow_server, tmp_path
):
    from mlflow.tracking import MlflowClient

    def live_file() -> bytes:
        return subprocess.run(
            ["git", "--git-dir", manifests, "show", f"main:{OVERLAY}/{LIVE_FILE}"],
            check=True,
            capture_output=True,
        ).stdout

    before = live_file()
    registry = MlflowClient(tracking_uri=mlflow_server)
    new_version = published["new"].model_version
    rc = main(
        [
            "promote",
            "--manifests-repo", manifests,
            "--preview-url", ready_slots["green"][1],
            "--tracking-uri", mlflow_server,
            "--expect-version", new_version,
        ]
    )  # fmt: skip
    assert rc == 0
    assert live_file() != before
    assert registry.get_model_version_by_alias(DOCKER_MODEL, "production").version == new_version

    switched = tmp_path / "switched"
    subprocess.run(["git", "clone", "--quiet", manifests, str(switched)], check=True)
    assert StagingOverlay(switched / OVERLAY).live_slot() == "green"

    result = rollback(manifests, preview_url=ready_slots["blue"][1], tracking_uri=mlflow_server)
    assert (result.live, result.previous) == ("blue", "green")
    assert live_file() == before
    old_version = published["old"].model_version
    assert registry.get_model_version_by_alias(DOCKER_MODEL, "production").version == old_version
    subjects = log(manifests)
    assert subjects[0].startswith("staging: roll back to blue")
    assert subjects[1].startswith("staging: promote green to live")
