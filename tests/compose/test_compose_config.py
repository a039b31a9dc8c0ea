"""compose.yaml as docker-compose reads it, .env.example, and the stack's workspace sync (no containers)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.support import REPO_ROOT, copy_project

STAGE_PY = REPO_ROOT / "deploy" / "compose" / "stage.py"
ONE_SHOT_CHAIN = [("drift", "prepare"), ("train", "drift"), ("register", "train"), ("model-api", "register")]


def compose_command() -> list[str]:
    probe = subprocess.run(["docker", "compose", "version"], check=False, capture_output=True)
    if probe.returncode == 0:
        return ["docker", "compose"]
    if subprocess.run(["which", "docker-compose"], check=False, capture_output=True).returncode == 0:
        return ["docker-compose"]
    if os.environ.get("CI"):
        raise RuntimeError("neither docker compose nor docker-compose is installed")
    pytest.skip("neither docker compose nor docker-compose is installed")


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """compose.yaml after docker-compose's own parsing and interpolation, with no .env and no overrides."""
    empty_env_file = tmp_path_factory.mktemp("env") / ".env"
    empty_env_file.write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOILCI_", "MLFLOW_", "MODEL_", "COMPOSE_")) and k != "BASE_IMAGE"}
    out = subprocess.run(
        [*compose_command(), "--project-directory", str(REPO_ROOT), "-f", str(REPO_ROOT / "compose.yaml"),
         "--env-file", str(empty_env_file), "config"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def load_stage_module():
    spec = importlib.util.spec_from_file_location("compose_stage", STAGE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stages_run_in_order_and_wait_for_a_healthy_mlflow(resolved):
    services = resolved["services"]
    assert set(services) == {"mlflow", "prepare", "drift", "train", "register", "model-api"}
    for service, after in ONE_SHOT_CHAIN:
        assert services[service]["depends_on"][after]["condition"] == "service_completed_successfully"
    for service in ("train", "register", "model-api"):
        assert services[service]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "healthcheck" in services["mlflow"] and "healthcheck" in services["model-api"]
    assert services["model-api"]["environment"]["MODEL_URI"] == "models:/soil-carbon@staging"


def test_published_ports_listen_on_loopback_by_default(resolved):
    ports = {name: svc.get("ports", []) for name, svc in resolved["services"].items()}
    published = [p for plist in ports.values() for p in plist]
    assert {p["target"] for p in published if isinstance(p, dict)} | {
        int(str(p).split(":")[-1].split("/")[0]) for p in published if not isinstance(p, dict)
    } == {5000, 8000}
    assert all("127.0.0.1" in str(p) for p in published), published


def test_every_image_builds_from_base_image_and_state_lives_in_named_volumes(resolved):
    services = resolved["services"]
    built = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(built) == {"mlflow", "prepare", "drift", "model-api"}
    assert all(b["args"]["BASE_IMAGE"] == "python:3.11-slim-bookworm" for b in built.values())
    assert {s["image"].split(":")[0] for s in services.values()} == {
        "soil-mlflow", "soil-trainer", "soil-drift", "soil-model-api"}
    assert set(resolved["volumes"]) == {"mlflow", "workspace"}
    assert "mlflow:/mlflow" in str(services["mlflow"]["volumes"])


def test_env_example_documents_every_variable_compose_reads():
    used = set(re.findall(r"\$\{(\w+)", (REPO_ROOT / "compose.yaml").read_text())) | {"COMPOSE_PROJECT_NAME"}
    documented = set(re.findall(r"^#?(\w+)=", (REPO_ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used - documented == set()


def test_workspace_sync_mirrors_pipeline_sources_and_keeps_stage_outputs(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project")
    (project / "batches" / "field.csv").write_text("sample_id\n")
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "reference.parquet").write_bytes(b"produced by the prepare stage")
    stale = work / "services" / "drift" / "src" / "soil_drift" / "removed.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    stage = load_stage_module()
    monkeypatch.setattr(stage, "PROJECT", project)
    monkeypatch.setattr(stage, "WORK", work)
    monkeypatch.setattr(stage, "STATE", work / ".stack")
    monkeypatch.setattr(stage, "UID", os.getuid())
    monkeypatch.setattr(stage, "GID", os.getgid())
    monkeypatch.setenv("SOILCI_DATASET", "SSP.460")
    monkeypatch.setenv("SOILCI_INCOMING_BATCH", "batches/field.csv")
    monkeypatch.setenv("MODEL_NAME", "soil-test")

    stage.sync_workspace()

    assert (work / "data" / "reference.parquet").read_bytes() == b"produced by the prepare stage"
    assert not stale.exists()
    assert (work / "services/trainer/src/soil_trainer/prepare.py").read_text() == (
        project / "services/trainer/src/soil_trainer/prepare.py").read_text()
    assert (work / "batches" / "field.csv").exists() and (work / "dvc.yaml").exists()
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["prepare"]["incoming_batch"] == "batches/field.csv"
    assert params["register"]["model_name"] == "soil-test"
    assert params["train"] == yaml.safe_load((project / "params.yaml").read_text())["train"]
    assert not (work / "tests").exists() and not (work / "docs").exists()


@pytest.mark.parametrize("batch", ["../params.yaml", "data/incoming.parquet", "batches/missing.parquet"])
def test_incoming_batch_outside_batches_or_missing_is_bad_input(tmp_path, batch):
    project = copy_project(tmp_path / "project")
    env = {**os.environ, "SOILCI_PROJECT_DIR": str(project), "SOILCI_WORK_DIR": str(tmp_path / "work"),
           "SOILCI_INCOMING_BATCH": batch}
    (tmp_path / "work").mkdir()
    out = subprocess.run([sys.executable, str(STAGE_PY), "prepare"], capture_output=True, text=True,
                         env=env, check=False, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"SOILCI_INCOMING_BATCH={batch}" in out.stderr
    assert list((tmp_path / "work").iterdir()) == [], "nothing is synced when .env is wrong"
