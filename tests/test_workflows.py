"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, thin and least-privileged."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# What a step may run: the project's CLIs and the tools that set them up.
ALLOWED_PROGRAMS = {"soilci", "dvc", "cml", "python", "uv", "echo"}


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (uv sync installs it from the dev group)")
    return str(path)


def load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    return {("on" if k is True else k): v for k, v in yaml.safe_load(path.read_text()).items()}


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"pr.yaml", "main.yaml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_githubs_schema(path: Path):
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing():
    proc = subprocess.run([tool("zizmor"), "--offline", "--no-progress", *map(str, WORKFLOWS)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha_with_a_version_comment(path: Path):
    text = path.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for ref, rest in uses:
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
        assert re.search(r"#\s*v\d", rest), f"{path.name}: {ref} has no version comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_start_empty_and_each_job_asks_for_its_own(path: Path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} sets no permissions"
        assert all(v in {"read", "write", "none"} for v in job["permissions"].values())
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        assert writes <= {"pull-requests", "packages"}, f"{path.name}: job {name} writes {writes}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_superseded_runs_are_cancelled_or_queued(path: Path):
    assert "group" in load(path)["concurrency"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_steps_only_call_the_projects_cli(path: Path):
    for job, step in steps(load(path)):
        if "run" not in step:
            continue
        for line in step["run"].strip().splitlines():
            program = line.split()[0]
            assert program in ALLOWED_PROGRAMS, f"{path.name}/{job}: step runs {program!r}: {line}"
            assert not re.search(r"\b(if|for|while|case)\b.*\b(then|do|in)\b", line), f"logic in YAML: {line}"


def test_pr_workflow_runs_pipeline_report_and_updates_one_comment():
    workflow = load(ROOT / ".github" / "workflows" / "pr.yaml")
    assert "pull_request" in workflow["on"]
    runs = [step.get("run", "") for _, step in steps(workflow)]
    order = [next(i for i, r in enumerate(runs) if r.startswith(cmd))
             for cmd in ("dvc pull", "soilci pipeline", "soilci report --base origin/main", "cml comment update")]
    # The drift gate's candidate is what the PR adds to main's library.
    assert "soilci pipeline --base origin/main" in runs
    assert order == sorted(order)
    checkout = next(s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    assert workflow["concurrency"]["cancel-in-progress"] is True
    # Only the job that posts the comment may write to pull requests, and it runs no PR code.
    for name, job in workflow["jobs"].items():
        posts = any("cml comment" in s.get("run", "") for s in job["steps"])
        assert (job["permissions"].get("pull-requests") == "write") == posts, name
        if posts:
            assert not any("soilci" in s.get("run", "") for s in job["steps"])


def test_main_workflow_runs_pipeline_with_registration_then_delivers():
    workflow = load(ROOT / ".github" / "workflows" / "main.yaml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    runs = [step.get("run", "") for _, step in steps(workflow)]
    order = [next(i for i, r in enumerate(runs) if cmd in r)
             for cmd in ("soilci pipeline --base HEAD~1 --push --register", "soilci report", "runs/registered.json",
                         "soilci publish-image", "soilci bump")]
    assert order == sorted(order)
    # One registration path: the pipeline's, as in the compose stack; no step registers on its own.
    assert not any("soil-trainer" in r for r in runs)
    pipeline = workflow["jobs"]["pipeline"]
    version_step = next(s for s in pipeline["steps"] if "runs/registered.json" in s.get("run", ""))
    assert pipeline["outputs"]["model-version"] == f"${{{{ steps.{version_step['id']}.outputs.version }}}}"
    # Pushing images is the only job that may write packages.
    for name, job in workflow["jobs"].items():
        pushes = any("publish-image" in s.get("run", "") for s in job["steps"])
        assert (job["permissions"].get("packages") == "write") == pushes, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_that_reach_the_s3_remote_install_dvcs_s3_support(path: Path):
    """Steps given the DVC remote's AWS credentials need dvc-s3 (the `s3` extra); uv.lock must pin it."""
    lock = (ROOT / "uv.lock").read_text()
    assert '\nname = "dvc-s3"\n' in lock
    for name, job in load(path)["jobs"].items():
        job_steps = job.get("steps", [])
        if not any("AWS_ACCESS_KEY_ID" in (step.get("env") or {}) for step in job_steps):
            continue
        syncs = [step["run"] for step in job_steps if "uv sync" in step.get("run", "")]
        assert syncs and all("--extra s3" in run for run in syncs), f"{path.name}: job {name}"
