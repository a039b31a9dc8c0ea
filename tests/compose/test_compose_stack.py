"""The developer stack end to end: scripts/up.sh and compose.yaml on a project copy, real containers.

The copy is a git repository on main with the library's metadata only, as a fresh clone is; the stack's
`pipeline` service runs `soilci library demo` and `soilci pipeline --register` on it, and the model API
serves the version it registered. The stack also runs with the import probe (tests/compose/probe.yaml):
compose's own images, soilci and soil-mlflow, must install only what the stack's runs import.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from soil_contracts.git import git_revision
from soil_contracts.records import RegisteredVersion, RunRecord
from soilci.params import Params
from soilci.pipeline.dvc import open_repo
from tests.probe_usage import PROBE, assert_installs_only_what_it_imports, image_usage
from tests.support import REPO_ROOT, add_batch, copy_project, free_port, set_dvc_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Variables the stack reads; the test's .env must be the only source, so the shell's are dropped.
STACK_VARS = ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "MLFLOW_PORT", "MODEL_API_PORT", "SOILCI_BIND_ADDRESS",
              "SOILCI_IMAGE_TAG", "SOILCI_GIT_REVISION", "SOILCI_STAGE_NETWORK")
BIN = Path(sys.executable).parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], check=False, capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if os.environ.get("CI"):
        raise RuntimeError("neither docker compose nor docker-compose is installed")
    pytest.skip("neither docker compose nor docker-compose is installed")


@dataclass
class Stack:
    root: Path
    name: str
    env: dict[str, str]
    api: str
    mlflow: str
    compose: list[str]
    model: str  # the name params.yaml gives (register.model_name) or derives (from prepare.target)
    remote: Path  # the project's DVC remote (a local folder)
    tag: str  # the stack's image tag (SOILCI_IMAGE_TAG)
    reports: Path  # the import probe's reports, one folder per probed service
    timings: dict[str, float] = field(default_factory=dict)

    def up(self, label: str) -> subprocess.CompletedProcess:
        start = time.monotonic()
        result = subprocess.run(
            ["bash", "scripts/up.sh", "--no-setup"], cwd=self.root, env=self.env,
            capture_output=True, text=True, timeout=900, check=False,
        )
        self.timings[label] = time.monotonic() - start
        # Beside the project, not in it: an untracked file there makes its tree differ from HEAD.
        (self.root.parent / f"up-{label}.log").write_text(result.stdout + result.stderr)
        print(f"{label} up: {self.timings[label]:.1f}s (exit {result.returncode})")
        return result

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.compose, *args], cwd=self.root, env={**self.env, "PWD": str(self.root)},
                              capture_output=True, text=True, check=check, timeout=300)

    def container(self, service: str) -> str:
        # By compose's labels with the docker CLI: a docker-compose 1.29 call costs about a CPU-second.
        return docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.name}",
                      "--filter", f"label=com.docker.compose.service={service}").split()[0]

    def last_log(self, service: str) -> str:
        cid = self.container(service)
        since = docker("inspect", "-f", "{{.State.StartedAt}}", cid)
        # The container's stdout and stderr (where soilci pipeline reports), in order.
        return subprocess.run(["docker", "logs", "--since", since, cid], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=True).stdout

    def model_versions(self) -> list[dict]:
        reply = httpx.get(f"{self.mlflow}/api/2.0/mlflow/model-versions/search",
                          params={"filter": f"name='{self.model}'"}, timeout=10)
        reply.raise_for_status()
        return reply.json().get("model_versions", [])

    def staging_version(self) -> str:
        reply = httpx.get(f"{self.mlflow}/api/2.0/mlflow/registered-models/alias",
                          params={"name": self.model, "alias": "staging"}, timeout=10)
        reply.raise_for_status()
        return reply.json()["model_version"]["version"]

    def last_run(self) -> RunRecord:
        return RunRecord.load(max((self.root / "runs").glob("*/run.json")))

    def served(self) -> dict:
        return httpx.get(f"{self.api}/v1/model", timeout=10).json()

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.name}"
        return {
            kind: subprocess.run(cmd + ["--filter", label, "-q"], capture_output=True, text=True,
                                 check=True).stdout.split()
            for kind, cmd in {"containers": ["docker", "ps", "-a"], "volumes": ["docker", "volume", "ls"],
                              "networks": ["docker", "network", "ls"]}.items()
        }


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client):
    from soilci.images import resolve_base_image

    compose = compose_command()
    # A fresh clone: the library's metadata, whose spectra `soilci library demo` imports. A checkout is
    # world-readable.
    root = copy_project(tmp_path_factory.mktemp("stack") / "project", library=False)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "project"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    # The stack's own DVC remote (git-ignored config.local, so the checkout stays clean), not the machine's.
    remote = tmp_path_factory.mktemp("dvc-remote")
    set_dvc_config(root, "local", remote=remote, default=True)
    model = Params.load(root / "params.yaml").model_name
    tag = f"stack-{uuid.uuid4().hex[:8]}"
    name = f"soilci-test-{tag}"
    api_port, mlflow_port = free_port(), free_port()
    reports = tmp_path_factory.mktemp("probe-reports")
    for service in ("mlflow", "pipeline"):
        (reports / service).mkdir()
        os.chmod(reports / service, 0o777)  # soil-mlflow's user (10001) writes there too
    # Own image tags: a concurrent `soilci build` retagging soil-*:local cannot recreate our containers.
    (root / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={name}\nSOILCI_IMAGE_TAG={tag}\nSOILCI_BIND_ADDRESS=127.0.0.1\n"
        f"MLFLOW_PORT={mlflow_port}\nMODEL_API_PORT={api_port}\n"
        f"COMPOSE_FILE=compose.yaml:tests/compose/probe.yaml\n"
        f"SOILCI_PROBE_DIR={PROBE}\nSOILCI_PROBE_REPORTS={reports}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARS}
    env["BASE_IMAGE"] = resolve_base_image(docker_client)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the copy has no .venv: up.sh finds soilci here
    # The revision label `soilci build` gives the same sources, so every layer comes from its cache.
    env["SOILCI_VCS_REF"] = git_revision(REPO_ROOT, env=False)
    built = Stack(root, name, env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{mlflow_port}", compose,
                  model, remote, tag, reports)
    try:
        yield built
    finally:
        if any(built.leftovers().values()):  # test_down_leaves_nothing_running took it down already
            built.run("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        images = [f"soil-mlflow:{tag}", f"soilci:{tag}", f"soil-model-api:{tag}"]
        subprocess.run(["docker", "rmi", "--no-prune", *images], check=False, capture_output=True)


@pytest.fixture(scope="module")
def cold_up(stack) -> subprocess.CompletedProcess:
    assert not any(stack.leftovers().values()), "the stack must start from a clean state"
    return stack.up("cold")


def test_a_port_in_use_stops_up_with_exit_3_not_the_gates_1(stack):
    """Before the cold up, on the same stack: its MLflow port taken by another process, up.sh says the stack
    did not come up and exits 3, the code for what is not there; 1 is a gate's verdict. Nothing runs."""
    assert not any(stack.leftovers().values()), "the stack must start from a clean state"
    port = int(stack.mlflow.rsplit(":", 1)[1])
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            result = stack.up("port-in-use")
    finally:
        stack.run("down", "-v", "--remove-orphans", "--timeout", "5")
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "the stack did not come up" in output and "soilci pipeline failed" not in output
    assert f"'{' '.join(stack.compose)} down -v' removes what it created" in output  # .env names the project
    assert not (stack.root / "runs").exists()  # the pipeline never started


def test_cold_up_serves_the_registered_version_with_the_trainers_predictions(stack, cold_up, prepared_data):
    assert cold_up.returncode == 0, cold_up.stdout + cold_up.stderr
    assert f"{stack.api}/docs" in cold_up.stdout
    assert stack.mlflow in cold_up.stdout
    assert f"{stack.root}/runs/{stack.last_run().run_id}" in cold_up.stdout
    assert f"stop         {' '.join(stack.compose)} down " in cold_up.stdout  # .env names the project
    assert httpx.get(f"{stack.api}/docs", timeout=10).status_code == 200
    assert httpx.get(stack.mlflow, timeout=10).status_code == 200

    run = stack.last_run()
    assert {s.outcome for s in run.stages} == {"ran"} and run.exit_code == 0
    versions = stack.model_versions()
    assert [v["version"] for v in versions] == ["1"]
    assert stack.staging_version() == "1"
    registered = RegisteredVersion.load(stack.root / "runs" / "registered.json")
    assert (registered.name, registered.version, registered.alias) == (stack.model, "1", "staging")
    info = stack.served()
    assert (info["name"], info["version"]) == (stack.model, "1") and "staging" in info["aliases"]

    # Real benchmark spectra in, the trainer's recorded benchmark predictions out.
    recorded = pd.read_csv(stack.root / "metrics" / "predictions.csv").set_index("sample_id")
    benchmark = pd.read_parquet(prepared_data / "benchmark.parquet").iloc[::4]
    spectra = benchmark[info["bands"]].to_dict(orient="records")
    reply = httpx.post(f"{stack.api}/v1/predict", json={"spectra": spectra}, timeout=30)
    assert reply.status_code == 200, reply.text
    expected = recorded.loc[benchmark["sample_id"], "predicted"].to_numpy()
    # predictions.csv records 6 decimals.
    np.testing.assert_allclose(reply.json()["predictions"], expected, rtol=0, atol=1e-6)


def test_cold_up_leaves_the_remote_as_mains_workflow_does_so_a_pr_report_has_a_baseline(stack, cold_up):
    from soilci.report.baseline import ResultsRecord

    assert cold_up.returncode == 0, "needs the cold stack"
    head = subprocess.run(["git", "-C", str(stack.root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    record = ResultsRecord.load(stack.remote / "soilci-results" / f"{head}.json")
    assert record.metrics == (stack.root / "metrics" / "metrics.json").read_text()
    assert f"results      {stack.remote}/soilci-results/{head}.json" in cold_up.stdout
    with open_repo(stack.root) as repo:  # every output and tracked file is in the remote: a clone pulls them
        assert repo.status(cloud=True) == {}


def test_second_up_reuses_the_cached_results_without_retraining(stack, cold_up):
    assert cold_up.returncode == 0, "needs the cold stack"
    warm = stack.up("warm")
    assert warm.returncode == 0, warm.stdout + warm.stderr

    pipeline_log = stack.last_log("pipeline")
    assert "all 4 stages up to date; nothing to run" in pipeline_log, pipeline_log
    assert {s.outcome for s in stack.last_run().stages} == {"up to date"}
    assert [v["version"] for v in stack.model_versions()] == ["1"]
    assert stack.served()["version"] == "1"
    assert stack.timings["warm"] < stack.timings["cold"]


def test_drift_gate_failure_stops_before_training_and_keeps_serving_the_previous_version(
    stack, cold_up, prepared_data
):
    assert cold_up.returncode == 0, "needs the cold stack"
    # Benchmark-disjoint samples with a baseline offset of 5% of the mean signal on every band.
    incoming = pd.read_parquet(prepared_data / "incoming.parquet")
    bands = [c for c in incoming.columns if c.startswith(("wl_", "wn_"))]
    shifted = incoming.copy()
    shifted[bands] = shifted[bands] + 0.05 * float(incoming[bands].to_numpy().mean())
    shifted["sample_id"] = shifted["sample_id"] + "-shifted"
    add_batch(stack.root, "shifted", shifted)  # a batch the working tree has and main has not

    result = stack.up("drift-fail")

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "drift gate failed (exit 1)" in output
    verdict = json.loads((stack.root / "reports" / "drift.json").read_text())
    assert verdict["status"] == "fail"
    assert verdict["summary"] in output
    run = stack.last_run()
    assert run.stopped_at == "drift", "train must not run after a failed gate"
    assert {s.name: s.outcome for s in run.stages} == {
        "prepare": "ran", "drift": "failed", "train": "not run", "evaluate": "not run"}
    assert [v["version"] for v in stack.model_versions()] == ["1"]
    assert f"keeps serving {stack.model} version 1" in output
    info = stack.served()
    assert info["version"] == "1" and "staging" in info["aliases"]


def test_the_registry_answers_its_ui_search_and_graphql(stack, cold_up):
    assert cold_up.returncode == 0, "needs the cold stack"
    with httpx.Client(base_url=stack.mlflow, timeout=60) as client:
        assert client.get("/").status_code == 200
        assert client.get("/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 10}).status_code == 200
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


@pytest.fixture(scope="module")
def down(stack, cold_up) -> None:
    """`compose down -v`: the servers stop (and the probe's reports are written)."""
    stack.run("down", "-v", "--remove-orphans", "--timeout", "5")


def test_down_leaves_nothing_running(stack, down):
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": []}
    for run_dir in (stack.root / "runs").glob("*/"):
        label = f"label=org.soilci.run-id={run_dir.name}"
        assert docker("ps", "-a", "-q", "--filter", label) == "", f"stage containers of {run_dir.name} remain"


def test_compose_images_install_only_what_the_stack_imports(stack, cold_up, down, docker_client):
    """soilci: `soilci library demo` and `soilci pipeline --register` of every up (the stages in their own
    containers through the engine's socket); soil-mlflow: the registry the runs logged and registered in, the
    model API downloaded from, and its UI (the test above)."""
    assert cold_up.returncode == 0, "needs the cold stack"
    soilci = image_usage(docker_client, f"soilci:{stack.tag}", stack.reports / "pipeline")
    assert sum("soilci library demo" in argv for argv in soilci["reports"]) == 3, soilci["reports"]  # one per up
    assert sum("soilci pipeline --register --branch main" in argv for argv in soilci["reports"]) == 3
    assert_installs_only_what_it_imports(docker_client, f"soilci:{stack.tag}", "soilci", soilci,
                                         {"soilci", "soil-trainer", "dvc", "docker", "limesoda", "pandas"})
    mlflow = image_usage(docker_client, f"soil-mlflow:{stack.tag}", stack.reports / "mlflow")
    assert any("mlflow.server.fastapi_app:app" in argv for argv in mlflow["reports"]), mlflow["reports"]  # served
    assert_installs_only_what_it_imports(docker_client, f"soil-mlflow:{stack.tag}", "mlflow", mlflow,
                                         {"mlflow", "sqlalchemy", "alembic", "uvicorn"})


def test_the_soilci_image_runs_the_stages_only_in_their_images(stack, down):
    """`soilci pipeline --local` in compose's soilci image exits 3 and names the extra it lacks."""
    result = subprocess.run(
        ["docker", "run", "--rm", "--label", "org.soilci.test=compose-stack", "-v", f"{stack.root}:{stack.root}",
         "-w", str(stack.root), f"soilci:{stack.tag}", "pipeline", "--local"],
        capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "'local' extra" in result.stderr and "scikit-learn (needed by soil-trainer)" in result.stderr, result.stderr


def test_compose_images_that_install_mlflow_switch_its_telemetry_off(stack, cold_up, docker_client):
    """soil-mlflow and soilci set MLFLOW_DISABLE_TELEMETRY, as the model API's image does (tests/test_images.py)."""
    assert cold_up.returncode == 0, "needs the cold stack's images"
    for image in (f"soil-mlflow:{stack.tag}", f"soilci:{stack.tag}"):
        assert "MLFLOW_DISABLE_TELEMETRY=true" in docker_client.images.get(image).attrs["Config"]["Env"], image
