"""compose.yaml as docker-compose reads it, and .env.example (no containers)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT

PROJECT = Path("/srv/projects/soil-ci")  # where the project sits on the host, for ${PWD}


def compose_command() -> list[str]:
    probe = subprocess.run(["docker", "compose", "version"], check=False, capture_output=True)
    if probe.returncode == 0:
        return ["docker", "compose"]
    if subprocess.run(["which", "docker-compose"], check=False, capture_output=True).returncode == 0:
        return ["docker-compose"]
    if os.environ.get("CI"):
        raise RuntimeError("neither docker compose nor docker-compose is installed")
    pytest.skip("neither docker compose nor docker-compose is installed")


def resolve(env_dir: Path, **variables: str) -> dict:
    """compose.yaml after docker-compose's own parsing and interpolation, with no .env, only ``variables``."""
    empty_env_file = env_dir / ".env"
    empty_env_file.write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOILCI_", "MLFLOW_", "MODEL_", "COMPOSE_")) and k != "BASE_IMAGE"}
    env["PWD"] = str(PROJECT)
    out = subprocess.run(
        [*compose_command(), "--project-directory", str(REPO_ROOT), "-f", str(REPO_ROOT / "compose.yaml"),
         "--env-file", str(empty_env_file), "config"],
        capture_output=True, text=True, env={**env, **variables}, check=False,
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """compose.yaml as docker-compose resolves it with no .env and no overrides."""
    return resolve(tmp_path_factory.mktemp("env"))


def volumes(service: dict) -> set[str]:
    """Short-syntax volume strings, whichever syntax the compose version prints."""
    return {v if isinstance(v, str) else f"{v['source']}:{v['target']}" + (":ro" if v.get("read_only") else "")
            for v in service.get("volumes", [])}


def test_one_pipeline_service_runs_the_orchestrator_then_the_model_api_starts(resolved):
    services = resolved["services"]
    assert set(services) == {"mlflow", "pipeline", "model-api"}
    pipeline = services["pipeline"]
    # The demo library's spectra are restored first (a no-op for a lab's own library), then the one run.
    (script,) = pipeline["command"]
    assert pipeline["entrypoint"] == ["/bin/sh", "-c"]
    assert script.startswith("soilci library demo && exec soilci pipeline --register")
    assert pipeline["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["model-api"]["depends_on"]["pipeline"]["condition"] == "service_completed_successfully"
    assert services["model-api"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "healthcheck" in services["mlflow"] and "healthcheck" in services["model-api"]


def test_the_driver_sees_the_project_at_its_host_path_and_drives_the_hosts_engine(resolved):
    pipeline = resolved["services"]["pipeline"]
    assert pipeline["working_dir"] == str(PROJECT)
    mounts = {m.removesuffix(":rw") for m in volumes(pipeline)}
    assert f"{PROJECT}:{PROJECT}" in mounts  # stage containers mount the same host path
    assert "/var/run/docker.sock:/var/run/docker.sock" in mounts
    # The stage containers join the stack's network, so they reach MLflow by its service name.
    assert pipeline["environment"]["SOILCI_STAGE_NETWORK"] == resolved["networks"]["default"]["name"]
    assert pipeline["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_the_model_api_serves_the_registered_version_from_the_projects_runs(resolved):
    api = resolved["services"]["model-api"]
    registered = Path(api["environment"]["MODEL_API_REGISTERED_FILE"])
    assert registered.name == "registered.json"
    assert f"{REPO_ROOT / 'runs'}:{registered.parent}:ro" in volumes(api)
    assert "MODEL_URI" not in api["environment"]  # the name comes from params.yaml only


def test_published_ports_listen_on_loopback_by_default(resolved):
    ports = {name: svc.get("ports", []) for name, svc in resolved["services"].items()}
    published = [p for plist in ports.values() for p in plist]
    assert {p["target"] for p in published if isinstance(p, dict)} | {
        int(str(p).split(":")[-1].split("/")[0]) for p in published if not isinstance(p, dict)
    } == {5000, 8000}
    assert all("127.0.0.1" in str(p) for p in published), published


def host_ips(service: dict) -> set[str]:
    """The host addresses a service's published ports listen on, whichever syntax compose prints."""
    return {p.get("host_ip", "0.0.0.0") if isinstance(p, dict) else str(p).rsplit(":", 2)[0]
            for p in service.get("ports", [])}


def test_mlflow_listens_on_loopback_only_even_when_the_stack_is_shared(tmp_path):
    # It has no authentication: sharing the model API must not share the registry.
    shared = resolve(tmp_path, SOILCI_BIND_ADDRESS="0.0.0.0")
    assert host_ips(shared["services"]["mlflow"]) == {"127.0.0.1"}
    assert host_ips(shared["services"]["model-api"]) == {"0.0.0.0"}


def test_every_image_builds_from_base_image_and_mlflow_state_lives_in_a_named_volume(resolved):
    services = resolved["services"]
    built = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(built) == {"mlflow", "pipeline", "model-api"}
    assert all(b["args"]["BASE_IMAGE"] == "python:3.11-slim-bookworm" for b in built.values())
    assert {s["image"].split(":")[0] for s in services.values()} == {"soil-mlflow", "soilci", "soil-model-api"}
    assert set(resolved["volumes"]) == {"mlflow"}
    assert "mlflow:/mlflow" in str(services["mlflow"]["volumes"])


def test_model_name_and_training_inputs_are_not_settings_of_the_stack():
    compose = (REPO_ROOT / "compose.yaml").read_text()
    text = compose + (REPO_ROOT / ".env.example").read_text()
    for name in ("MODEL_NAME", "MODEL_URI", "SOILCI_DATASET", "SOILCI_INCOMING_BATCH"):
        assert name not in text, name
    assert "soil-soc" not in compose  # params.yaml's register.model_name names the model


def test_env_example_documents_every_variable_compose_reads():
    # PWD is the shell's: compose runs from the project root.
    used = set(re.findall(r"\$\{(\w+)", (REPO_ROOT / "compose.yaml").read_text())) - {"PWD"}
    documented = set(re.findall(r"^#?(\w+)=", (REPO_ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used - documented == set()


@pytest.mark.parametrize("line", [
    "COMPOSE_PROJECT_NAME=lab-a # the first stack",
    "  export   COMPOSE_PROJECT_NAME=lab-b",
    "COMPOSE_PROJECT_NAME=\"Lab C\" # quoted",
    "COMPOSE_PROJECT_NAME='lab#d'",
])
def test_up_sh_reads_env_as_compose_does(tmp_path, line):
    """scripts/up.sh finds the stack's containers by the project name it reads from .env: the same as compose's."""
    (tmp_path / ".env").write_text(f"{line}\n")
    function = re.search(r"^env_file_value\(\) \{.*?^\}$", (REPO_ROOT / "scripts" / "up.sh").read_text(),
                         re.DOTALL | re.MULTILINE).group(0)
    ours = subprocess.run(["bash", "-c", f"{function}\nenv_file_value COMPOSE_PROJECT_NAME"], cwd=tmp_path,
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    config = subprocess.run(
        [*compose_command(), "--project-directory", str(tmp_path), "-f", str(REPO_ROOT / "compose.yaml"),
         "--env-file", str(tmp_path / ".env"), "config"],
        capture_output=True, text=True, env={**env, "PWD": str(PROJECT)}, check=True,
    )
    assert yaml.safe_load(config.stdout)["networks"]["default"]["name"] == f"{ours}-stack"


@pytest.mark.parametrize(("shell", "env_file", "hint"), [
    (None, "COMPOSE_PROJECT_NAME=lab-a\n", "docker-compose down"),  # compose reads .env again on down
    ("lab-b", "", "COMPOSE_PROJECT_NAME=lab-b docker-compose down"),  # the shell's variable may be gone by then
    ("lab-c", "COMPOSE_PROJECT_NAME=lab-a\n", "COMPOSE_PROJECT_NAME=lab-c docker-compose down"),
    (None, "", "COMPOSE_PROJECT_NAME=myproject docker-compose down"),  # the folder's name, exported by up.sh only
])
def test_up_sh_stop_hint_names_the_project_unless_env_does(tmp_path, shell, env_file, hint):
    script = (REPO_ROOT / "scripts" / "up.sh").read_text()
    pieces = [re.search(pattern, script, re.DOTALL | re.MULTILINE).group(0) for pattern in (
        r"^env_file_value\(\) \{.*?^\}$", r"^stop_hint\(\) \{.*?^\}$", r'^env_named="".*?^project="\$\(printf.*?$')]
    folder = tmp_path / "My Project"
    folder.mkdir()
    (folder / ".env").write_text(env_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    if shell:
        env["COMPOSE_PROJECT_NAME"] = shell
    program = "\n".join([*pieces[:2], "compose=(docker-compose)", f"root={shlex.quote(str(folder))}", pieces[2],
                         "stop_hint"])
    out = subprocess.run(["bash", "-c", program], cwd=folder, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hint
