"""The three service images build from the local base, run as non-root, and run a stage for real."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.support import copy_project

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("service", ["drift", "trainer", "model-api"])
def test_image_runs_as_non_root_and_answers_help(docker_client, built_images, service):
    image = built_images[service]
    uid = docker_client.containers.run(image, entrypoint=["id", "-u"], remove=True).decode().strip()
    assert uid != "0" and uid == "10001"
    out = docker_client.containers.run(image, command=["--help"], remove=True).decode()
    assert f"usage: soil-{service}" in out


@pytest.mark.parametrize("service", ["drift", "trainer", "model-api"])
def test_image_carries_oci_labels_and_its_base(docker_client, built_images, service):
    labels = docker_client.images.get(built_images[service]).labels
    assert labels["org.opencontainers.image.title"] == f"soil-{service}"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert len(labels["org.opencontainers.image.revision"]) >= 7


def test_prepare_stage_runs_in_the_trainer_container(docker_client, built_images, tmp_path: Path, prepared_data):
    work = copy_project(tmp_path / "work")  # params, the library with a PR batch, its base listing
    for path in [work, *work.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o644)  # the container's user (10001) writes data/ here
    docker_client.containers.run(
        built_images["trainer"],
        command=["prepare", "--params", "params.yaml", "--out-dir", "data"],
        volumes={str(work): {"bind": "/work", "mode": "rw"}},
        read_only=True,
        tmpfs={"/tmp": ""},
        remove=True,
    )
    for name in ("reference", "benchmark", "incoming", "training"):
        made = work / "data" / f"{name}.parquet"
        assert made.stat().st_uid == 10001
        pd.testing.assert_frame_equal(pd.read_parquet(made), pd.read_parquet(prepared_data / f"{name}.parquet"))


def test_trainer_container_reports_bad_params_with_exit_2(docker_client, built_images, tmp_path: Path):
    import docker.errors

    (tmp_path / "params.yaml").write_text("library: {grid: {start: 350, stop: 2495, step: 5}}\n"
                                          "prepare:\n  target: SOC_target\n  dataset: NOPE.1\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path / "params.yaml", 0o644)
    with pytest.raises(docker.errors.ContainerError) as err:
        docker_client.containers.run(
            built_images["trainer"], command=["prepare"], volumes={str(tmp_path): {"bind": "/work", "mode": "ro"}},
            remove=True,
        )
    assert err.value.exit_status == 2
    assert b"prepare.unit: Field required" in err.value.stderr
    assert b"prepare.dataset: Extra inputs are not permitted" in err.value.stderr
