"""dvc.yaml's stages: deps name exactly the code each command imports, so a change reruns what it touches.

Also: dvc repro runs every stage once, reruns only what a change touches, a forced rerun of the model gives
identical metrics, and the remote round-trips. DVC runs in this process (its Python API, which its CLI calls);
the stages' commands run as dvc.yaml says, in subprocesses.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from modulefinder import ModuleFinder
from pathlib import Path

import pytest
import yaml

from soilci.pipeline.dvc import open_repo
from tests.support import REPO_ROOT, copy_project, reproduce, set_dvc_config

BIN = Path(sys.executable).parent
# Our own packages and where their sources live; every other import is a third-party or stdlib module.
SOURCE_ROOTS = {"soil_trainer": "services/trainer/src", "soil_drift": "services/drift/src",
                "soil_contracts": "libs/contracts/src"}
TRAINER = "services/trainer/src/soil_trainer"


def stale_stages(project: Path) -> set[str]:
    """Stages ``dvc status`` reports as changed (deps, params, command or outputs)."""
    with open_repo(project) as repo:
        return set(repo.status())


def imports_of(nodes) -> list[tuple[str, list[str]]]:
    """``(module, fromlist)`` of each absolute import statement among ``nodes``."""
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imported_files(name: str) -> set[str]:
    """``traced_files`` of stage ``name``'s command (see ``traced_stage_files``)."""
    return set(traced_stage_files()[STAGES[name]["cmd"]])


@functools.cache
def traced_stage_files() -> dict[str, list[str]]:
    """``traced_files`` of every stage's command, in one fresh interpreter: what other tests imported or
    patched cannot change it. One interpreter serves all commands: each trace starts a ModuleFinder of its
    own, which reads the source files and not the interpreter's imported modules."""
    script = ("import json, sys; from tests.test_dvc_stages import traced_files; "
              "print(json.dumps({cmd: sorted(traced_files(cmd)) for cmd in sys.argv[1:]}))")
    cmds = [stage["cmd"] for stage in STAGES.values()]
    proc = subprocess.run([sys.executable, "-c", script, *cmds], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def traced_files(cmd: str) -> set[str]:
    """Repo-relative source files of our packages that a stage's command imports.

    The console script's module and its top-level imports, the imports inside the verb's function
    (``COMMANDS[verb]``), and, transitively, all they import (function-level imports included).
    """
    program, verb = shlex.split(cmd)[:2]
    (entry,) = entry_points(group="console_scripts", name=program)
    cli = importlib.import_module(entry.module)
    tree = ast.parse(inspect.getsource(cli))
    verb_function = ast.parse(inspect.getsource(cli.COMMANDS[verb]))
    finder = ModuleFinder(path=[str(REPO_ROOT / root) for root in SOURCE_ROOTS.values()])
    for module, fromlist in imports_of(tree.body) + imports_of(ast.walk(verb_function)):
        if module.split(".")[0] in SOURCE_ROOTS:
            finder.import_hook(module, None, fromlist or None, level=0)
    files = {Path(cli.__file__).resolve()} | {Path(m.__file__).resolve() for m in finder.modules.values() if m.__file__}
    return {f.relative_to(REPO_ROOT).as_posix() for f in files if f.is_relative_to(REPO_ROOT)}


def code_deps(stage: dict) -> list[str]:
    """The stage's deps that are source code (a file or a package folder under a source root)."""
    return [d for d in stage.get("deps", []) if d.startswith(tuple(SOURCE_ROOTS.values()))]


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep.rstrip("/") + "/")


STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_depends_on_exactly_the_code_its_command_imports(name):
    stage = STAGES[name]
    imported = imported_files(name)
    deps = code_deps(stage)
    assert any(f.startswith(TRAINER) or "soil_drift" in f for f in imported), imported  # the trace saw the package
    missing = sorted(f for f in imported if not any(covers(d, f) for d in deps))
    assert not missing, f"{name}: imported but not in deps (a change would not rerun it): {missing}"
    unused = sorted(d for d in deps if not any(covers(d, f) for f in imported))
    assert not unused, f"{name}: in deps but never imported (a change would rerun it for nothing): {unused}"


def test_evaluate_imports_no_training_code():
    imported = imported_files("evaluate")
    assert not {f"{TRAINER}/{m}.py" for m in ("train", "model", "tracking", "prepare", "dataset")} & imported


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git copy of the project whose default DVC remote is a local folder."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    remote = tmp_path_factory.mktemp("remote")
    git(root, "init", "-q", "-b", "main")
    set_dvc_config(root, remote=remote, default=True)
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return root


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


@pytest.fixture
def stage_env(monkeypatch) -> None:
    """What the stages' commands see: this venv's soil-* programs first on PATH, MLflow's default store.

    No MLFLOW_* variable: the trainer tracks in the project's ./mlruns, as a plain ``dvc repro`` does.
    """
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SOILCI_GIT_REVISION", "test")
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)


@pytest.mark.slow
def test_repro_runs_every_stage_then_nothing_then_only_what_a_hyperparameter_touches(project: Path, stage_env):
    assert reproduce(project) == ["prepare", "drift", "train", "evaluate"]
    assert reproduce(project) == []

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["pls"]["max_components"] = params["train"]["pls"]["max_components"] - 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert reproduce(project) == ["train", "evaluate"]

    with open_repo(project) as repo:  # dvc metrics show
        assert "rmse" in json.dumps(repo.metrics.show())


def append_comment(path: Path) -> str:
    """Append a comment line to ``path``; returns the original text."""
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    return original


@pytest.mark.slow
def test_editing_a_module_makes_stale_only_the_stages_that_import_it(project: Path, stage_env):
    """``dvc status`` after each edit names the stages a ``dvc repro`` would run: the same comparison of deps
    with dvc.lock decides both (test_repro_runs_every_stage... shows repro running exactly those)."""
    if stale_stages(project):
        reproduce(project)  # whatever ran before, every stage is up to date now
    assert stale_stages(project) == set()

    for module, stale in (("evaluate.py", {"evaluate"}), ("train.py", {"train"}),
                          ("saved_model.py", {"train", "evaluate"})):
        path = project / TRAINER / module
        original = append_comment(path)
        assert stale_stages(project) == stale, module
        path.write_text(original)
    assert stale_stages(project) == set()


@pytest.mark.slow
def test_forced_rerun_of_the_model_gives_identical_metrics(project: Path, stage_env):
    """The pipeline is reproducible: train and evaluate forced again on the same data give identical files.

    Only the stages that make the model and its metrics rerun: prepare's determinism is checked by
    services/trainer/tests/test_prepare.py::test_prepare_is_deterministic, evaluate's alone by
    test_evaluate.py::test_evaluate_twice_gives_identical_files there, and the model does not read drift's
    report (train depends on it for order only: the gate passes first).
    """
    if stale_stages(project):
        reproduce(project)
    made = ("metrics/metrics.json", "metrics/predictions.csv")
    before = {name: (project / name).read_bytes() for name in made}
    assert reproduce(project, "train", "evaluate", force=True, single_item=True) == ["train", "evaluate"]
    assert {name: (project / name).read_bytes() for name in made} == before
    assert b'"rmse"' in before["metrics/metrics.json"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_dvc_push_then_pull_restores_the_data(project: Path, stage_env):
    data = project / "data"
    if not (data / "reference.parquet").exists():
        reproduce(project, "prepare")
    before = {p.name: md5(p) for p in data.glob("*.parquet")}
    with open_repo(project) as repo:
        repo.push()
    shutil.rmtree(data)
    shutil.rmtree(project / ".dvc" / "cache")
    with open_repo(project) as repo:
        repo.pull()
    assert {p.name: md5(p) for p in data.glob("*.parquet")} == before
    assert len(before) == 4  # reference, incoming, training, benchmark
