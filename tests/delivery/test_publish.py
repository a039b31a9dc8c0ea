"""soilci publish-image: bad input exits 2 before Docker work; with Docker, a push to a loopback registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from soil_contracts.model import ModelMetadata
from soil_contracts.records import ImageRecord, RegisteredVersion
from soilci.cli import main
from tests.delivery.support import REVISION


def publish(*args: str, registry: str | None = "127.0.0.1:1") -> int:
    """Run ``soilci publish-image`` with a fixed git revision (and an unreachable registry)."""
    extra = ["--registry", registry] if registry else []
    return main(["publish-image", *args, *extra, "--git-revision", "0123456789ab"])


def set_version(model_dir: Path, version: str) -> None:
    meta = ModelMetadata.load(model_dir / ModelMetadata.FILE)
    meta.model_copy(update={"version": version}).save(model_dir / ModelMetadata.FILE)


def test_publish_refuses_a_model_dir_recording_another_version(model_dir, capsys):
    set_version(model_dir, "6")
    rc = publish("--model-version", "7", "--model-dir", str(model_dir))
    assert rc == 2
    assert "soilci.json: records version 6, but --model-version is 7" in capsys.readouterr().err


def test_publish_refuses_a_model_dir_of_another_model(model_dir, capsys):
    rc = publish("--model-version", "7", "--model-dir", str(model_dir), "--model-name", "soil-ph")
    assert rc == 2
    assert "soilci.json: records model 'soil-soc', not 'soil-ph'" in capsys.readouterr().err


def test_publish_refuses_a_directory_that_is_not_an_mlflow_model(tmp_path, capsys):
    rc = publish("--model-version", "7", "--model-dir", str(tmp_path))
    assert rc == 2
    assert "not an MLflow model directory (no MLmodel file)" in capsys.readouterr().err


def test_publish_refuses_model_metadata_that_is_not_a_models(model_dir, capsys):
    (model_dir / ModelMetadata.FILE).write_text('{"name": "soil-soc", "version": null}')
    rc = publish("--model-version", "7", "--model-dir", str(model_dir))
    assert rc == 2
    assert "soilci.json: model metadata: git_revision: Field required" in capsys.readouterr().err


def test_publish_needs_a_registry(model_dir, capsys, monkeypatch):
    monkeypatch.delenv("REGISTRY", raising=False)
    monkeypatch.delenv("SOILCI_REGISTRY", raising=False)
    rc = publish("--model-version", "7", "--model-dir", str(model_dir), registry=None)
    assert rc == 2
    assert "no registry: pass --registry or set REGISTRY" in capsys.readouterr().err


def test_publish_reads_name_and_version_from_the_register_record(tmp_path, model_dir, capsys):
    record = RegisteredVersion(
        name="soil-soc", version="9", alias="staging", uri="models:/soil-soc/9", run_id="r"
    ).save(tmp_path / "registered.json")
    set_version(model_dir, "8")
    rc = publish("--registered", str(record), "--model-dir", str(model_dir))
    assert rc == 2
    assert "records version 8, but --model-version is 9" in capsys.readouterr().err


def test_publish_refuses_a_register_record_without_a_version(tmp_path, model_dir, capsys):
    (tmp_path / "registered.json").write_text('{"name": "soil-soc"}')
    rc = publish("--registered", str(tmp_path / "registered.json"), "--model-dir", str(model_dir))
    assert rc == 2
    assert "registered.json: register record: version: Field required" in capsys.readouterr().err


@pytest.mark.docker
def test_publish_pushes_to_the_registry_and_the_image_pulls_back_by_digest(
    published, registry, docker_client
):
    record = published["new"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", record.digest)
    assert record.tag == f"{REVISION[:12]}-v{record.model_version}"
    assert record.image == f"{registry}/soil-model-api:{record.tag}@{record.digest}"
    manifest = httpx.get(
        f"http://{registry}/v2/soil-model-api/manifests/{record.digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == record.digest
    docker_client.images.remove(f"{record.repository}:{record.tag}")
    pulled = docker_client.images.pull(f"{record.repository}@{record.digest}")
    assert pulled.id == record.image_id
    labels = pulled.labels
    assert labels["io.soilci.model.version"] == record.model_version
    assert labels["org.opencontainers.image.revision"] == REVISION


@pytest.mark.docker
def test_publish_records_the_digest_and_bump_reads_the_record(published, publish_dir, manifests, capsys):
    record = ImageRecord.load(publish_dir / "new.json")
    assert record == published["new"]
    assert record.git_revision == REVISION
    # The manifests already pin this image for green (the fixture bumped it): a rerun commits nothing.
    assert main(["bump", "--manifests-repo", manifests, "--from", str(publish_dir / "new.json")]) == 0
    assert "already pins" in capsys.readouterr().err


@pytest.mark.docker
def test_a_registry_version_without_model_metadata_is_stamped_from_its_run(published, docker_client):
    record = published["old"]  # downloaded from the MLflow registry, which keeps no soilci.json
    out = docker_client.containers.run(
        record.image, entrypoint=["cat", f"/models/model/{ModelMetadata.FILE}"], remove=True
    )
    meta = ModelMetadata.parse(json.loads(out), where="image")
    assert (meta.name, meta.version, meta.git_revision) == (record.model_name, record.model_version, REVISION)
    assert (meta.target, meta.model, meta.data_version) == ("SOC_target", "pls", "test")
    assert meta.bands and all(b.startswith(("wl_", "wn_")) for b in meta.bands)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--git-revision", '391a3e000a29"\nRUN id > /tmp/x\nLABEL z="'),
        ("--model-name", 'soil"\nRUN echo INJECTED-BUILD-STEP > /injected.txt\nLABEL x="y'),
        ("--service-image", "soil-model-api:x\nRUN id"),
        ("--registry", "127.0.0.1:1/a b"),
    ],
)
def test_publish_refuses_values_that_would_reach_the_dockerfile_unquoted(model_dir, tmp_path, capsys, flag, value):
    out = tmp_path / "image.json"
    args = {"--git-revision": REVISION, "--model-name": "soil-soc", "--registry": "127.0.0.1:1", flag: value}
    argv = ["publish-image", "--model-version", "7", "--model-dir", str(model_dir), "--out", str(out)]
    rc = main([*argv, *(x for kv in args.items() for x in kv)])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{flag} {value!r}" in err and ("does not match" in err or "expected host" in err)
    assert not out.exists()


@pytest.mark.docker
def test_a_publish_killed_mid_push_records_nothing_and_a_rerun_completes(
    registry, versions, docker_client, tmp_path
):
    # shared/cases/faults/publish: a push cut off midway must leave no image.json, and a rerun must finish.
    import os
    import signal
    import subprocess
    import sys

    from soilci.delivery.refs import image_tag
    from tests.delivery.support import DOCKER_MODEL, StallingProxy, small_service_image

    version, model_dir = versions["new"]
    # Atomicity does not depend on what the service image holds: a small one keeps both pushes (the proxy
    # is another registry host, so nothing already pushed can be mounted) from gzipping the 451 MB model-api.
    service_image = small_service_image(docker_client, tmp_path / "service")
    proxy = StallingProxy(int(registry.rsplit(":", 1)[1]))
    repository = f"127.0.0.1:{proxy.port}/midkill/soil-model-api"
    tag = image_tag(REVISION, version)
    out = tmp_path / "records" / "image.json"
    args = ["publish-image", "--model-name", DOCKER_MODEL, "--model-version", version, "--model-dir", str(model_dir),
            "--registry", f"127.0.0.1:{proxy.port}/midkill", "--git-revision", REVISION,
            "--service-image", service_image, "--out", str(out), "--quiet"]
    manifest = f"http://{registry}/v2/midkill/soil-model-api/manifests/{tag}"
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"}
    try:
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen([str(Path(sys.executable).parent / "soilci"), *args], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            try:
                assert proxy.stalled.wait(timeout=600), "the push never reached the registry"
            finally:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
        assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no record, no temp file
        assert httpx.get(manifest, headers=accept).status_code == 404  # nothing was released under the tag

        proxy.release()
        assert main(args) == 0
        record = ImageRecord.load(out)
        assert (record.repository, record.tag) == (repository, tag)
        served = httpx.get(manifest, headers=accept)
        assert served.status_code == 200 and served.headers["Docker-Content-Digest"] == record.digest
    finally:
        proxy.close()
        for image in docker_client.images.list(name=repository):
            docker_client.images.remove(image.id, force=True)
        docker_client.images.remove(service_image, force=True)
