"""dvc.yaml's stages: deps name exactly the code each command imports, so a change reruns what it touches.

Also: dvc repro runs every stage once, reruns only what a change touches, and the remote round-trips.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from modulefinder import ModuleFinder
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, copy_project

BIN = Path(sys.executable).parent
# Our own packages and where their sources live; every other import is a third-party or stdlib module.
SOURCE_ROOTS = {"soil_trainer": "services/trainer/src", "soil_drift": "services/drift/src",
                "soil_contracts": "libs/contracts/src"}
TRAINER = "services/trainer/src/soil_trainer"


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db",
           "SOILCI_GIT_REVISION": "test"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


def stale_stages(project: Path) -> set[str]:
    """Stages ``dvc status`` reports as changed (deps, params, command or outputs)."""
    return set(json.loads(run([str(BIN / "dvc"), "status", "--json"], project).stdout or "{}"))


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
    root = copy_project(tmp_path_factory.mktemp("project"))
    remote = tmp_path_factory.mktemp("remote")
    run(["git", "init", "-q", "-b", "main"], root)
    run([str(BIN / "dvc"), "remote", "add", "-f", "-d", "local", str(remote)], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], root)
    return root


@pytest.mark.slow
def test_repro_runs_every_stage_then_nothing_then_only_what_a_hyperparameter_touches(project: Path):
    first = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(first.stdout) == ["prepare", "drift", "train", "evaluate"]

    second = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(second.stdout) == []

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["pls"]["max_components"] = params["train"]["pls"]["max_components"] - 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = run([str(BIN / "dvc"), "repro"], project)
    assert ran_stages(third.stdout) == ["train", "evaluate"]

    diff = run([str(BIN / "dvc"), "metrics", "show", "--json"], project)
    assert "rmse" in diff.stdout


def append_comment(path: Path) -> str:
    """Append a comment line to ``path``; returns the original text."""
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    return original


@pytest.mark.slow
def test_editing_a_module_makes_stale_only_the_stages_that_import_it(project: Path):
    run([str(BIN / "dvc"), "repro"], project)  # whatever ran before, every stage is up to date now
    assert stale_stages(project) == set()

    append_comment(project / TRAINER / "evaluate.py")
    assert stale_stages(project) == {"evaluate"}
    assert ran_stages(run([str(BIN / "dvc"), "repro"], project).stdout) == ["evaluate"]

    for module, stale in (("train.py", {"train"}), ("saved_model.py", {"train", "evaluate"})):
        path = project / TRAINER / module
        original = append_comment(path)
        assert stale_stages(project) == stale, module
        path.write_text(original)
    assert stale_stages(project) == set()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_dvc_push_then_pull_restores_the_data(project: Path):
    data = project / "data"
    if not (data / "reference.parquet").exists():
        run([str(BIN / "dvc"), "repro", "prepare"], project)
    before = {p.name: md5(p) for p in data.glob("*.parquet")}
    run([str(BIN / "dvc"), "push"], project)
    shutil.rmtree(data)
    shutil.rmtree(project / ".dvc" / "cache")
    run([str(BIN / "dvc"), "pull"], project)
    assert {p.name: md5(p) for p in data.glob("*.parquet")} == before
    assert len(before) == 4  # reference, incoming, training, benchmark
