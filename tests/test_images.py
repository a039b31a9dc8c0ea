"""The three service images build from the local base, run as non-root, answer --help and carry their labels.

A stage run for real in the trainer image (prepare's outputs, bad params with exit 2) is checked by
tests/test_image_contents.py, which runs the trainer's verbs in it.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("service", ["drift", "trainer", "model-api"])
def test_image_runs_as_non_root_and_answers_help(docker_client, built_images, service):
    image = built_images[service]
    uid = docker_client.containers.run(image, entrypoint=["id", "-u"], remove=True).decode().strip()
    assert uid != "0" and uid == "10001"
    out = docker_client.containers.run(image, command=["--help"], remove=True).decode()
    assert f"usage: soil-{service}" in out
    if service == "trainer":
        assert "register" in out  # the registry verb is in the image


@pytest.mark.parametrize("service", ["drift", "trainer", "model-api"])
def test_image_carries_oci_labels_and_its_base(docker_client, built_images, service):
    labels = docker_client.images.get(built_images[service]).labels
    assert labels["org.opencontainers.image.title"] == f"soil-{service}"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert len(labels["org.opencontainers.image.revision"]) >= 7


@pytest.mark.parametrize("service", ["trainer", "model-api"])
def test_images_that_install_mlflow_switch_its_telemetry_off(docker_client, built_images, service):
    """MLflow's usage telemetry would fetch its settings from, and send events to, MLflow's servers."""
    image = built_images[service]
    assert "MLFLOW_DISABLE_TELEMETRY=true" in docker_client.images.get(image).attrs["Config"]["Env"]
    if service == "model-api":  # MLflow's own check, in the image, with nothing from this test's environment
        check = "from mlflow.telemetry.utils import is_telemetry_disabled as off; print(off())"
        out = docker_client.containers.run(image, entrypoint=["python", "-c", check], remove=True,
                                           network_mode="none").decode()
        assert out.strip() == "True"
