"""Delivery with real parts: a loopback Docker registry, model-api containers run from the rendered
manifests, a bare git manifests repo and an MLflow server for the production alias."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import docker.errors
import httpx
import pandas as pd
import pytest

from soilci.cli import main
from soilci.delivery.bump import bump, bump_request
from soilci.delivery.gitops import COLOURS, LIVE_FILE, ImageRef, StagingOverlay, render
from soilci.delivery.promote import promote, rollback
from soilci.delivery.publish import Published, publish_image
from soilci.errors import GateRefused

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = "deploy/kustomize/overlays/staging"
MODEL_NAME = "soil-carbon-delivery"  # its own registered model, so other tests' aliases stay theirs
REVISION = "0123456789abcdef0123456789abcdef01234567"
REQUIREMENTS = ["scikit-learn", "cloudpickle"]  # stated, so MLflow skips inferring the environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not up after {timeout}s")


def quantity(value: str) -> float:
    """A Kubernetes quantity (``768Mi``, ``64Mi``, ``500m``, ``1``) as a plain number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()
    return float(number) * units[unit]


def run_container_spec(client, pod: dict, name: str):
    """``docker run`` a pod's only container as Kubernetes would: image, args, env, ports, user,
    read-only root, dropped capabilities, emptyDir mounts, resource limits."""
    (container,) = pod["containers"]
    pod_ctx, ctx = pod.get("securityContext", {}), container.get("securityContext", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmpfs = {}
    for mount in container.get("volumeMounts", []):
        empty_dir = volumes[mount["name"]]["emptyDir"]  # the only volume kind the manifests use
        tmpfs[mount["mountPath"]] = f"size={int(quantity(empty_dir.get('sizeLimit', '64Mi')))}"
    limits = container["resources"]["limits"]
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    return client.containers.run(
        container["image"],
        command=container.get("args"),
        entrypoint=container.get("command"),
        environment={e["name"]: e["value"] for e in container.get("env", [])},
        user=f"{uid}:{gid}",
        read_only=ctx["readOnlyRootFilesystem"],
        cap_drop=ctx["capabilities"]["drop"],
        security_opt=["no-new-privileges"] if ctx.get("allowPrivilegeEscalation") is False else None,
        tmpfs=tmpfs,
        mem_limit=int(quantity(limits["memory"])),
        nano_cpus=int(quantity(limits["cpu"]) * 1e9),
        ports={f"{p['containerPort']}/tcp": ("127.0.0.1", None) for p in container["ports"]},
        name=name,
        detach=True,
    )


def host_url(container, port: int) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


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


def fit_model(data_dir: Path, out: Path, n_components: int) -> Path:
    """A small real pipeline (per-spectrum scaling + PLS) on a reference slice, saved as the trainer saves."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, scale

    reference = pd.read_parquet(data_dir / "reference.parquet").iloc[:80]
    bands = [c for c in reference.columns if re.match(r"^(wl|wn)_\d+(\.\d+)?$", c)]
    X, y = reference[bands].astype("float64"), reference["SOC_target"]
    pipeline = make_pipeline(
        FunctionTransformer(scale, kw_args={"axis": 1}), PLSRegression(n_components=n_components)
    )
    pipeline.fit(X, y)
    mlflow.sklearn.save_model(
        pipeline,
        str(out),
        serialization_format="cloudpickle",
        pip_requirements=REQUIREMENTS,
        signature=infer_signature(X, pipeline.predict(X)),
    )
    (out / "soilci.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "version": None,
                "git_revision": REVISION,
                "data_version": "test",
                "target": "SOC_target",
                "bands": bands,
                "metrics": {},
            }
        )
    )
    return out


def register(tracking_uri: str, model_dir: Path) -> str:
    """Register ``model_dir`` as a new version of MODEL_NAME; returns the version number."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import Model

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                mlflow.sklearn.load_model(str(model_dir)),
                name="model",
                registered_model_name=MODEL_NAME,
                serialization_format="cloudpickle",
                pip_requirements=REQUIREMENTS,
                signature=Model.load(str(model_dir)).signature,
            )
        return str(info.registered_model_version)
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry (distribution 2.x) on a loopback port, storage in a temp dir."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: soilci-test\n"
    )
    with open(root / "registry.log", "w") as log:
        proc = subprocess.Popen(
            [
                shutil.which("docker-registry") or "/usr/bin/docker-registry",
                "serve",
                str(root / "config.yml"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/", timeout=30, proc=proc)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def versions(prepared_data, mlflow_server, tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Two registered versions of a small model: {'old': (version, dir), 'new': (version, dir)}."""
    root = tmp_path_factory.mktemp("delivery-models")
    out = {}
    for key, n in (("old", 3), ("new", 4)):
        model_dir = fit_model(prepared_data, root / key, n)
        out[key] = (register(mlflow_server, model_dir), model_dir)
    return out


@pytest.fixture(scope="module")
def publish_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("publish")


@pytest.fixture(scope="module")
def published(registry, versions, built_images, docker_client, publish_dir, mlflow_server) -> dict:
    """Both versions baked onto the model-api image and pushed: {'old': Published, 'new': Published}."""
    root = publish_dir
    # The old one from the MLflow registry (no --model-dir): models:/<name>/<version> is downloaded.
    version, _ = versions["old"]
    records = {
        "old": publish_image(
            model_version=version,
            model_name=MODEL_NAME,
            tracking_uri=mlflow_server,
            registry=registry,
            revision=REVISION,
            service_image=built_images["model-api"],
            out=root / "old.json",
            client=docker_client,
        )
    }
    # The new one as the workflow does it: the CLI, reading soil-trainer register's record.
    version, model_dir = versions["new"]
    (root / "registered.json").write_text(
        json.dumps({"name": MODEL_NAME, "version": version, "alias": "staging"})
    )
    rc = main(
        [
            "publish-image",
            "--registered",
            str(root / "registered.json"),
            "--model-dir",
            str(model_dir),
            "--registry",
            registry,
            "--git-revision",
            REVISION,
            "--service-image",
            built_images["model-api"],
            "--out",
            str(root / "new.json"),
            "--quiet",
        ]
    )
    assert rc == 0
    records["new"] = Published(**json.loads((root / "new.json").read_text()))
    yield records
    for record in records.values():
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(record.image_id, force=True)


@pytest.fixture(scope="module")
def manifests(published, tmp_path_factory) -> str:
    """A bare manifests repo: blue live on the old version, green (preview) bumped to the new one."""
    root = tmp_path_factory.mktemp("manifests")
    bare, work = root / "manifests.git", root / "seed"

    def git(*args: str, cwd: Path | None = None) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    shutil.copytree(ROOT / "deploy" / "kustomize", work / "deploy" / "kustomize")
    old = published["old"]
    StagingOverlay(work / OVERLAY).set_release(
        "blue",
        ImageRef.parse(old.image),
        model_name=MODEL_NAME,
        model_version=old.model_version,
        git_revision=old.git_revision,
    )
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", "-A", cwd=work)
    git(
        "-c", "user.name=seed", "-c", "user.email=seed@localhost", "commit", "--quiet", "-m", "seed", cwd=work
    )
    git("push", "--quiet", str(bare), "main", cwd=work)
    result = bump(str(bare), bump_request(published["new"].image, model_name=MODEL_NAME))
    assert result.detail == "green"
    return str(bare)


@pytest.fixture(scope="module")
def colours(manifests, docker_client, tmp_path_factory) -> dict:
    """Each colour's rendered pod spec running in Docker: {'blue': (container, url, pod), ...}."""
    checkout = tmp_path_factory.mktemp("render") / "repo"
    subprocess.run(["git", "clone", "--quiet", manifests, str(checkout)], check=True)
    objects = render(checkout / OVERLAY)
    running = {}
    try:
        for colour in COLOURS:
            dep = next(
                o
                for o in objects
                if o["kind"] == "Deployment" and o["metadata"]["name"] == f"model-api-{colour}"
            )
            pod = dep["spec"]["template"]["spec"]
            container = run_container_spec(docker_client, pod, f"soilci-delivery-{colour}-{free_port()}")
            running[colour] = (container, host_url(container, 8000), pod)
        yield running
    finally:
        for container, _, _ in running.values():
            container.remove(force=True)


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


def test_publish_records_the_digest_and_bump_reads_the_record(published, publish_dir, manifests, capsys):
    record = json.loads((publish_dir / "new.json").read_text())
    assert record["image"] == published["new"].image and record["digest"] == published["new"].digest
    assert record["model_version"] == published["new"].model_version and record["git_revision"] == REVISION
    # The manifests already pin this image for green (the fixture bumped it): a rerun commits nothing.
    assert main(["bump", "--manifests-repo", manifests, "--from", str(publish_dir / "new.json")]) == 0
    assert "already pins" in capsys.readouterr().err


@pytest.mark.parametrize("colour", COLOURS)
def test_rendered_container_spec_runs_in_docker_and_its_probes_pass(colours, published, colour):
    container, url, pod = colours[colour]
    (spec,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    startup = spec["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert run_probe(url, startup, ports) == 200, container.logs()[-2000:].decode()
    # The kubelet keeps probing readiness; the model must load within the startup budget.
    assert run_probe(url, spec["readinessProbe"], ports, budget=budget) == 200, container.logs()[
        -2000:
    ].decode()
    assert run_probe(url, spec["livenessProbe"], ports) == 200
    served = httpx.get(f"{url}/v1/model", timeout=5).json()
    record = published["old" if colour == "blue" else "new"]
    assert (served["slot"], str(served["version"]), served["image_tag"]) == (
        colour,
        record.model_version,
        record.tag,
    )
    container.reload()
    assert container.attrs["Config"]["User"] == "10001:10001"
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert container.status == "running"


def test_promote_refuses_when_the_preview_colour_is_not_ready(
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
        wait_http(f"{url}/healthz", timeout=60)
        with pytest.raises(GateRefused, match=r"^green is not ready: GET .*/readyz answered 503"):
            promote(manifests, preview_url=url, tracking_uri=mlflow_server)
    finally:
        broken.remove(force=True)


def test_promote_refuses_when_the_preview_serves_another_model_version(
    manifests, colours, published, mlflow_server
):
    _, blue_url, _ = colours["blue"]  # a preview Service still reaching the old pods
    old, new = published["old"], published["new"]
    with pytest.raises(
        GateRefused,
        match=(
            f"green serves model version {old.model_version}, but the manifests pin "
            f"{MODEL_NAME} v{new.model_version}"
        ),
    ):
        promote(manifests, preview_url=blue_url, tracking_uri=mlflow_server)


def test_promote_then_rollback_restores_the_previous_selector_exactly(
    manifests, colours, published, mlflow_server, tmp_path
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
    rc = main(
        [
            "promote",
            "--manifests-repo",
            manifests,
            "--preview-url",
            colours["green"][1],
            "--tracking-uri",
            mlflow_server,
            "--expect-version",
            published["new"].model_version,
        ]
    )
    assert rc == 0
    assert live_file() != before
    assert (
        registry.get_model_version_by_alias(MODEL_NAME, "production").version
        == published["new"].model_version
    )

    switched = tmp_path / "switched"
    subprocess.run(["git", "clone", "--quiet", manifests, str(switched)], check=True)
    assert StagingOverlay(switched / OVERLAY).live_colour() == "green"

    result = rollback(manifests, preview_url=colours["blue"][1], tracking_uri=mlflow_server)
    assert (result.live, result.previous) == ("blue", "green")
    assert live_file() == before
    assert (
        registry.get_model_version_by_alias(MODEL_NAME, "production").version
        == published["old"].model_version
    )
    subjects = subprocess.run(
        ["git", "--git-dir", manifests, "log", "--format=%s", "-3", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert subjects[0].startswith("staging: roll back to blue")
    assert subjects[1].startswith("staging: promote green to live")
