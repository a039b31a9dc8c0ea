"""Delivery fixtures: a seeded manifests repo, and for the Docker tests a loopback registry, two
registered model versions published to it, a manifests repo pinning them and their slots running."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from soil_contracts.bands import band_columns
from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import TRUSTED_TYPES
from soil_contracts.records import ImageRecord, RegisteredVersion
from soilci.cli import main
from soilci.delivery.bump import bump, bump_request
from soilci.delivery.overlay import SLOTS, StagingOverlay, render
from soilci.delivery.publish import publish_image
from soilci.delivery.refs import ImageRef
from soilci.delivery.release import ReleaseAnnotations
from tests.delivery.support import (
    DOCKER_MODEL,
    OVERLAY,
    REVISION,
    TRAINED,
    by_kind,
    host_url,
    run_container_spec,
    seed_manifests_repo,
)
from tests.support import free_port, wait_for_http

REQUIREMENTS = ["scikit-learn", "skops"]  # stated, so MLflow skips inferring the environment


@pytest.fixture
def repo(tmp_path) -> str:
    """A bare manifests repo seeded with this project's deploy/kustomize."""
    return seed_manifests_repo(tmp_path)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """The files publish-image looks at in a trained model directory (the model is not loaded)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "MLmodel").write_text("flavors:\n  sklearn: {serialization_format: skops, pickled_model: model.skops}\n")
    (path / "model.skops").write_bytes(b"")
    TRAINED.save(path / ModelMetadata.FILE)
    return path


def fit_model(data_dir: Path, out: Path, n_components: int) -> Path:
    """A small real pipeline (per-spectrum scaling + PLS) on a reference slice, saved as the trainer saves."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, scale

    reference = pd.read_parquet(data_dir / "reference.parquet").iloc[:80]
    bands = band_columns(reference.columns)
    X, y = reference[bands].astype("float64"), reference["SOC_target"]
    pipeline = make_pipeline(
        FunctionTransformer(scale, kw_args={"axis": 1}), PLSRegression(n_components=n_components)
    )
    pipeline.fit(X, y)
    mlflow.sklearn.save_model(
        pipeline,
        str(out),
        serialization_format="skops",
        skops_trusted_types=list(TRUSTED_TYPES),
        pip_requirements=REQUIREMENTS,
        signature=infer_signature(X, pipeline.predict(X)),
    )
    ModelMetadata(
        name=DOCKER_MODEL,
        git_revision=REVISION,
        data_version="test",
        target="SOC_target", target_unit="%",
        bands=bands,
        model="pls",
    ).save(out / ModelMetadata.FILE)
    return out


def register(tracking_uri: str, model_dir: Path) -> str:
    """Register ``model_dir`` as a new version of DOCKER_MODEL as soil-trainer register does (the files as
    they are, tagged with their digest), with lineage on the run (tags, ``train.model``) but without
    soilci.json; returns the version number."""
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    from soil_contracts.model_file import DIGEST_TAG, model_digest

    meta = ModelMetadata.load(model_dir / ModelMetadata.FILE)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = shutil.copytree(model_dir, Path(tmp) / "model", ignore=shutil.ignore_patterns(ModelMetadata.FILE))
            with mlflow.start_run() as run:
                mlflow.log_param("train.model", meta.model)
                mlflow.set_tags(
                    {"git_revision": meta.git_revision, "data_version": meta.data_version, "target": meta.target,
                     "target_unit": meta.target_unit}
                )
                mlflow.log_artifacts(str(files), artifact_path="model")
            client = MlflowClient(tracking_uri)
            if not client.search_registered_models(f"name='{DOCKER_MODEL}'"):
                client.create_registered_model(DOCKER_MODEL)
            version = client.create_model_version(DOCKER_MODEL, f"runs:/{run.info.run_id}/model",
                                                  run_id=run.info.run_id, tags={DIGEST_TAG: model_digest(files)})
        return str(version.version)
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry (distribution 2.x) on a loopback port, storage in a temp dir."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: soilci-test\n"
    )
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    with open(root / "registry.log", "w") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/v2/", timeout=30, proc=proc)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def versions(prepared_data, mlflow_server, tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Two registered versions of a small model: {'old': (version, dir), 'new': (version, dir)}."""
    root = tmp_path_factory.mktemp("delivery-models")
    out = {}
    for key, n in (("old", 3), ("new", 4)):
        model_dir = fit_model(prepared_data, root / key, n)
        out[key] = (register(mlflow_server, model_dir), model_dir)
    return out


@pytest.fixture(scope="session")
def publish_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("publish")


@pytest.fixture(scope="session")
def published(registry, versions, built_images, docker_client, publish_dir, mlflow_server) -> dict:
    """Both versions baked onto the model-api image and pushed: {'old': ImageRecord, 'new': ImageRecord}."""
    import docker.errors

    # The old one from the MLflow registry (no --model-dir): models:/<name>/<version> is downloaded.
    version, _ = versions["old"]
    records = {
        "old": publish_image(
            model_version=version,
            model_name=DOCKER_MODEL,
            tracking_uri=mlflow_server,
            registry=registry,
            revision=REVISION,
            service_image=built_images["model-api"],
            out=publish_dir / "old.json",
            client=docker_client,
        )
    }
    # The new one as the workflow does it: the CLI, reading soil-trainer register's record.
    version, model_dir = versions["new"]
    RegisteredVersion(
        name=DOCKER_MODEL,
        version=version,
        alias="staging",
        uri=f"models:/{DOCKER_MODEL}/{version}",
        run_id="r",
    ).save(publish_dir / "registered.json")
    rc = main(
        [
            "publish-image",
            "--registered", str(publish_dir / "registered.json"),
            "--model-dir", str(model_dir),
            "--registry", registry,
            "--git-revision", REVISION,
            "--service-image", built_images["model-api"],
            "--out", str(publish_dir / "new.json"),
            "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    records["new"] = ImageRecord.load(publish_dir / "new.json")
    yield records
    for record in records.values():
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(record.image_id, force=True)


@pytest.fixture(scope="session")
def manifests(published, tmp_path_factory) -> str:
    """A bare manifests repo: blue live on the old version, green (preview) bumped to the new one."""
    old = published["old"]

    def pin_blue(overlay: Path) -> None:
        notes = ReleaseAnnotations(
            model_name=DOCKER_MODEL, model_version=old.model_version, git_revision=old.git_revision
        )
        StagingOverlay(overlay).set_release("blue", ImageRef.parse(old.image), notes)

    bare = seed_manifests_repo(tmp_path_factory.mktemp("manifests"), pin_blue)
    result = bump(bare, bump_request(published["new"].image, model_name=DOCKER_MODEL))
    assert result.detail == "green"
    return bare


@pytest.fixture(scope="module")
def slots(manifests, docker_client, tmp_path_factory) -> dict:
    """Each slot's rendered pod spec running in Docker: {'blue': (container, url, pod), ...}."""
    checkout = tmp_path_factory.mktemp("render") / "repo"
    subprocess.run(["git", "clone", "--quiet", manifests, str(checkout)], check=True)
    deployments = by_kind(render(checkout / OVERLAY), "Deployment")
    running = {}
    try:
        for slot in SLOTS:
            pod = deployments[f"model-api-{slot}"]["spec"]["template"]["spec"]
            container = run_container_spec(docker_client, pod, f"soilci-delivery-{slot}-{free_port()}")
            running[slot] = (container, host_url(container, 8000), pod)
        yield running
    finally:
        for container, _, _ in running.values():
            container.remove(force=True)
