"""Each service image carries what its entry points import and nothing else.

Each image's real commands run in it (the DVC stages, error paths, the API serving requests from a
model directory and from the registry) with an import probe on PYTHONPATH
(``tests/image_probe/sitecustomize.py``): at exit every Python process reports the files of the modules
it imported and the shared libraries it mapped. The distributions whose RECORD lists those files are
what the image uses; any other installed distribution fails the test unless ``ALLOWED``
(``tests/probe_usage.py``) names it with the reason it stays. An allowance for a distribution the image
no longer installs fails too, so the list cannot go stale. A service's one-shot verbs run in one
interpreter (``tests/image_probe/run_verbs.py``): the probe reports the same union of imports for one
interpreter start. Compose's own images, ``soilci`` and ``soil-mlflow``, are probed in the stack the
compose test runs (tests/compose/test_compose_stack.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.probe_usage import LABEL, PROBE, assert_installs_only_what_it_imports, image_usage
from tests.support import copy_project, free_port, wait_for_http

pytestmark = pytest.mark.docker


class ProbedImage:
    """Runs commands in one image with the import probe; ``usage()`` reads what they imported."""

    def __init__(self, client, image: str, reports: Path) -> None:
        self.client, self.image, self.reports = client, image, reports
        reports.mkdir(parents=True)
        os.chmod(reports, 0o777)  # the image's user (10001) writes its reports here
        self.runs = 0

    def options(self, volumes: dict | None = None, environment: dict | None = None, **kwargs) -> dict:
        return {
            "volumes": {str(PROBE): {"bind": "/probe", "mode": "ro"},
                        str(self.reports): {"bind": "/probe-reports", "mode": "rw"}, **(volumes or {})},
            "environment": {"PYTHONPATH": "/probe", "SOILCI_IMPORT_PROBE_DIR": "/probe-reports",
                            **(environment or {})},
            "read_only": True, "tmpfs": {"/tmp": ""}, "labels": LABEL, **kwargs,
        }

    def run(self, command: list[str], expect: int = 0, **kwargs) -> str:
        """Run one command to its end; assert its exit code; return its output."""
        container = self.client.containers.run(self.image, command, detach=True, **self.options(**kwargs))
        try:
            status = container.wait(timeout=600)["StatusCode"]
            logs = container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)
        assert status == expect, f"{command}: exit {status}, expected {expect}\n{logs[-3000:]}"
        self.runs += 1
        return logs

    def run_verbs(self, program: str, runs: list[tuple[int, list[str]]], **kwargs) -> str:
        """Run ``program``'s verbs, each ``(expected exit code, args)``, in one interpreter; return the output."""
        return self.run(["/probe/run_verbs.py", program, json.dumps(runs)], entrypoint="python", **kwargs)

    def start(self, command: list[str], **kwargs):
        """Start a long-running command (a server); the caller stops it and counts it with ``stopped``."""
        return self.client.containers.run(self.image, command, detach=True, **self.options(**kwargs))

    def stopped(self, container) -> str:
        """Stop a server with SIGTERM (its atexit writes the report) and remove it; return its output."""
        try:
            container.stop(timeout=30)
            logs = container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)
        self.runs += 1
        return logs

    def usage(self) -> dict:
        """{"installed": [...], "used": [...], "reports": [argv, ...]}, names normalised (PEP 503)."""
        return image_usage(self.client, self.image, self.reports)


def assert_imports_everything_it_installs(probe: ProbedImage, service: str, must_use: set[str]) -> dict:
    """Assert the image installs nothing its runs did not import (or ALLOWED names); return ``probe.usage()``."""
    usage = probe.usage()
    assert len(usage["reports"]) >= probe.runs, usage["reports"]  # one report per process run: the probe works
    assert_installs_only_what_it_imports(probe.client, probe.image, service, usage, must_use)
    return usage


def world_readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)


def test_drift_image_installs_only_what_the_gate_imports(docker_client, built_images, prepared_data,
                                                        repo_root, tmp_path: Path):
    """Also the gate's verdicts in its image, on read-only data with a read-only root: the default split passes,
    a 1% baseline offset fails and is named, an accepted batch warns."""
    from soil_contracts.library import BatchState, LibrarySummary

    data = tmp_path / "data"
    shutil.copytree(prepared_data, data)
    shutil.copy(repo_root / "params.yaml", data / "params.yaml")
    reference, incoming = (pd.read_parquet(data / f"{n}.parquet") for n in ("reference", "incoming"))
    bands = [c for c in incoming.columns if c.startswith("wl_")]
    shift = 0.01 * float(np.mean(incoming[bands].to_numpy()))  # a 1% baseline offset
    offset = incoming.assign(**{b: incoming[b] + shift for b in bands})
    offset.to_parquet(data / "offset.parquet", index=False)
    reference.to_csv(data / "reference.csv", index=False)
    incoming.to_csv(data / "incoming.csv", index=False)
    # An accepted offset batch beside a clean one: the gate re-tests the clean rows on their own (pandas).
    pd.concat([offset.assign(batch="lab-o"), incoming.assign(batch="lab-clean")], ignore_index=True).to_parquet(
        data / "accepted.parquet", index=False)
    LibrarySummary(
        target="SOC_target", unit="%", benchmark_sha256="f" * 64, benchmark_rows=92, reference_rows=322,
        candidate_rows=0, training_rows=322,
        batches=[BatchState(id="lab-o", status="added", accepted_drift="new lamp, checked", accepted_by="lab")],
    ).save(data / "accepted.json")
    (data / "out").mkdir()
    world_readable(data)

    probe = ProbedImage(docker_client, built_images["drift"], tmp_path / "reports")
    # The inputs read-only; the gate writes its verdicts and plots into out/ only.
    mount = {"volumes": {str(data): {"bind": "/work", "mode": "ro"},
                         str(data / "out"): {"bind": "/work/out", "mode": "rw"}}, "network_mode": "none"}
    check = ["check", "reference.parquet"]
    # dvc.yaml's drift stage, then a failing batch, CSV inputs, an accepted batch and a missing file.
    probe.run_verbs("soil-drift", [
        (0, [*check, "incoming.parquet", "--library", "library.json", "--params", "params.yaml",
             "--out", "out/drift.json", "--plot", "out/drift.png"]),
        (1, [*check, "offset.parquet", "--params", "params.yaml", "--out", "out/offset.json",
             "--plot", "out/offset.png"]),
        (0, ["check", "reference.csv", "incoming.csv", "--params", "params.yaml"]),
        (0, [*check, "accepted.parquet", "--library", "accepted.json", "--params", "params.yaml",
             "--out", "out/accepted.json"]),
        (2, [*check, "missing.parquet"]),
    ], **mount)
    verdicts = {name: json.loads((data / "out" / f"{name}.json").read_text())
                for name in ("drift", "offset", "accepted")}
    assert verdicts["drift"]["status"] == "pass" and verdicts["drift"]["candidate"]["rows"] == 46
    assert (data / "out" / "drift.png").stat().st_uid == 10001  # written by the image's user
    assert verdicts["offset"]["status"] == "fail"
    assert "baseline offset" in [t["name"] for t in verdicts["offset"]["top_drifted"]]
    assert verdicts["accepted"]["status"] == "warn"
    assert_imports_everything_it_installs(probe, "drift", {"soil-drift", "pyarrow", "pandas", "matplotlib"})


@pytest.fixture(scope="module")
def trainer_probe(docker_client, built_images, mlflow_server, prepared_data, tmp_path_factory):
    """The trainer image's four stages on a copy of the project; register in the session's MLflow server.

    prepare, train and evaluate run with no network and no tracking server (train's runs go to the
    local store, mlruns/): the stages need neither. register then runs with the network, logging the
    saved model to the session's MLflow server (whose store does not know the local run) and registering it.
    Also: prepare's outputs there are owned by the image's user and equal the host's; bad params are
    reported by key with exit 2.
    """
    root = tmp_path_factory.mktemp("image-contents-trainer")
    work = copy_project(root / "work")
    params = work / "params.yaml"  # small CV settings keep training short; the code paths are the same
    params.write_text(params.read_text().replace("cv_folds: 10", "cv_folds: 5"))
    (work / "bad-params.yaml").write_text("library: {grid: {start: 350, stop: 2495, step: 5}}\n"
                                          "prepare:\n  target: SOC_target\n  dataset: NOPE.1\n")
    world_readable(work)
    probe = ProbedImage(docker_client, built_images["trainer"], root / "reports")
    name = f"soil-image-probe-{secrets.token_hex(3)}"
    mount = {"volumes": {str(work): {"bind": "/work", "mode": "rw"}}}
    logs = probe.run_verbs("soil-trainer", [
        (0, ["prepare", "--params", "params.yaml", "--out-dir", "data"]),
        (0, ["train", "--params", "params.yaml", "--data-dir", "data", "--model-dir", "models/model"]),
        (0, ["evaluate", "--params", "params.yaml", "--model-dir", "models/model", "--benchmark",
             "data/benchmark.parquet", "--metrics", "metrics/metrics.json", "--predictions",
             "metrics/predictions.csv", "--plots-dir", "reports"]),
        (2, ["train", "--params", "missing.yaml"]),
        (2, ["prepare", "--params", "bad-params.yaml"]),
    ], network_mode="none", environment={"SOILCI_GIT_REVISION": "image-probe"}, **mount)
    assert "prepare.unit: Field required" in logs and "prepare.dataset: Extra inputs are not permitted" in logs
    for table in ("reference", "benchmark", "incoming", "training"):
        made = work / "data" / f"{table}.parquet"
        assert made.stat().st_uid == 10001
        pd.testing.assert_frame_equal(pd.read_parquet(made), pd.read_parquet(prepared_data / f"{table}.parquet"))
    metrics = json.loads((work / "metrics" / "metrics.json").read_text())
    assert metrics["n_benchmark"] == 92 and 0 < metrics["rmse"] < 1.5
    meta = json.loads((work / "models" / "model" / "soilci.json").read_text())
    assert meta["git_revision"] == "image-probe" and meta["run_id"]
    assert (work / "mlruns").is_dir()  # the local MLflow store when MLFLOW_TRACKING_URI is unset
    probe.run_verbs("soil-trainer", [
        (0, ["register", "--params", "params.yaml", "--model-dir", "models/model", "--metrics",
             "metrics/metrics.json", "--name", name, "--branch", "main", "--out", "registered.json"]),
    ], network_mode="host", environment={"MLFLOW_TRACKING_URI": mlflow_server}, **mount)
    return probe, work, mlflow_server


def test_trainer_image_installs_only_what_the_stages_import(trainer_probe):
    probe, _, _ = trainer_probe
    usage = assert_imports_everything_it_installs(probe, "trainer", {"soil-trainer", "scikit-learn", "mlflow-skinny"})
    # The stages import no DVC (soilci runs DVC on the host), so the image carries none of it.
    assert not {"dvc", "pygit2", "dulwich"} & set(usage["installed"])


def test_model_api_image_installs_only_what_serving_imports(docker_client, built_images, trainer_probe,
                                                             tmp_path: Path):
    _, work, tracking = trainer_probe
    registered = json.loads((work / "registered.json").read_text())
    benchmark = pd.read_parquet(work / "data" / "benchmark.parquet")
    bands = [c for c in benchmark.columns if c.startswith("wl_")]
    spectra = benchmark[bands].to_numpy()[:8]
    probe = ProbedImage(docker_client, built_images["model-api"], tmp_path / "reports")
    model = {str(work / "models" / "model"): {"bind": "/models/model", "mode": "ro"}}
    sources = {
        "directory": {"MODEL_DIR": "/models/model"},
        "registry": {"MODEL_URI": f"models:/{registered['name']}/{registered['version']}",
                     "MLFLOW_TRACKING_URI": tracking},
    }
    for source, env in sources.items():
        port = free_port()
        server = probe.start(["serve"], volumes=model, network_mode="host", environment={
            **env, "MODEL_API_HOST": "127.0.0.1", "MODEL_API_PORT": str(port)})
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/healthz", timeout=90)
            deadline = time.monotonic() + 300  # loading: the registry download, then the self-check
            with httpx.Client(base_url=url, timeout=60) as poll:  # one client: each httpx.get loads the CA bundle
                ready = poll.get("/readyz")
                while ready.status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.5)  # /readyz answers at once; polling without a pause takes CPU from the loading
                    ready = poll.get("/readyz")
            assert ready.status_code == 200, (source, ready.text)
            with httpx.Client(base_url=url, timeout=120) as client:
                by_order = client.post("/v1/predict", json={"spectra": spectra.tolist()})
                by_name = client.post("/v1/predict", json={"spectra": [dict(zip(bands, spectra[0].tolist(),
                                                                                strict=True))]})
                short = client.post("/v1/predict", json={"spectra": [[1.0, 2.0]]})
                broken = client.post("/v1/predict", content=b"{", headers={"Content-Type": "application/json"})
                gets = {path: client.get(path).status_code for path in (
                    "/v1/model", "/v1/drift", "/metrics", "/docs", "/redoc", "/openapi.json",
                    "/docs-assets/swagger-ui-bundle.js")}
        finally:
            probe.stopped(server)
        assert (by_order.status_code, by_name.status_code, short.status_code, broken.status_code) == (
            200, 200, 422, 422), (source, by_order.text[:500])
        assert len(by_order.json()["predictions"]) == len(spectra)
        assert set(gets.values()) == {200}, (source, gets)
    # The one-shot check, and the registry down (exit 3: the transport error path).
    probe.run(["check"], volumes=model, environment={"MODEL_DIR": "/models/model"}, network_mode="none")
    probe.run(["check"], expect=3, network_mode="none", environment={
        "MODEL_URI": "models:/soil-soc/1", "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert_imports_everything_it_installs(probe, "model-api", {"soil-model-api", "soil-drift", "mlflow-skinny",
                                                               "uvicorn", "httptools", "fastapi-offline"})
