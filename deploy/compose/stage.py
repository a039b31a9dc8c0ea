"""Stage runner for the compose stack: keeps a DVC workspace in a named volume in step with the project.

``prepare`` (starts as root, drops to 10001): mirrors the project's pipeline sources from the read-only
``/project`` mount into the ``/work`` volume, applies the ``.env`` overrides to the workspace's copy of
params.yaml, and runs the prepare stage with ``dvc repro``. ``drift`` runs dvc.yaml's drift command and
says why when the gate fails. ``train`` reruns train and evaluate only when DVC sees a change.
``register`` registers the evaluated model unless it already is the staging version. Runs on the
service images' own Python (stdlib, PyYAML); nothing of the project is imported."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(os.environ.get("SOILCI_PROJECT_DIR", "/project"))
WORK = Path(os.environ.get("SOILCI_WORK_DIR", "/work"))
STATE = WORK / ".stack"
UID = GID = 10001
SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache"}

# .env variable -> params.yaml key it overrides in the workspace copy (empty or unset: no override).
OVERRIDES = {
    "SOILCI_DATASET": ("prepare", "dataset"),
    "SOILCI_INCOMING_BATCH": ("prepare", "incoming_batch"),
    "MODEL_NAME": ("register", "model_name"),
}


class StackError(Exception):
    """A problem the developer fixes in the project or in .env (exit 2)."""


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def stage_paths(dvc_yaml: dict) -> tuple[set[str], set[str], set[str]]:
    """Dependencies, outputs and params files of every stage in dvc.yaml."""
    deps: set[str] = set()
    outs: set[str] = set()
    params = {"params.yaml"}
    for stage in (dvc_yaml.get("stages") or {}).values():
        deps.update(str(d) for d in stage.get("deps") or [])
        for key in ("outs", "metrics", "plots"):
            for item in stage.get(key) or []:
                outs.add(next(iter(item)) if isinstance(item, dict) else str(item))
        for item in stage.get("params") or []:
            if isinstance(item, dict):
                params.update(k for k in item if k.endswith((".yaml", ".yml", ".json", ".toml")))
    return deps, outs, params


def mirror(rel: str) -> None:
    """Replace ``/work/<rel>`` with the project's copy (a file or a folder), or drop it if gone."""
    src, dst = PROJECT / rel, WORK / rel
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    if not src.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, ignore=lambda _d, names: [n for n in names if n in SKIP or n.endswith(
            (".pyc", ".dvc"))])
    else:
        shutil.copy2(src, dst)


def apply_overrides(params_file: Path) -> list[str]:
    """Write the .env overrides into the workspace's params.yaml; returns what was changed."""
    params = yaml.safe_load(params_file.read_text()) or {}
    changed = []
    for var, (section, key) in OVERRIDES.items():
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        block = params.setdefault(section, {})
        if block.get(key) != value:
            block[key] = value
            changed.append(f"{section}.{key}={value} (from {var})")
    header = "# Workspace copy of the project's params.yaml with the stack's .env overrides applied.\n"
    params_file.write_text(header + yaml.safe_dump(params, sort_keys=False))
    return changed


def check_batch(value: str) -> None:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts or path.parts[:1] != ("batches",):
        raise StackError(f"SOILCI_INCOMING_BATCH={value}: give a file under batches/, relative to the project")
    if not (PROJECT / path).is_file():
        raise StackError(f"SOILCI_INCOMING_BATCH={value}: no such file in the project")


def chown_tree(path: Path) -> None:
    os.chown(path, UID, GID)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), UID, GID, follow_symlinks=False)


def drop_privileges() -> None:
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
    os.environ["HOME"] = os.environ.get("HOME") or "/tmp"


def dvc(*args: str) -> int:
    return subprocess.call(["dvc", *args], cwd=WORK)


def sync_workspace() -> None:
    """Mirror dvc.yaml, params and every stage dependency that no stage produces."""
    if not (PROJECT / "dvc.yaml").is_file():
        raise StackError(f"{PROJECT}/dvc.yaml: not found; mount the project at {PROJECT}")
    if os.environ.get("SOILCI_INCOMING_BATCH", "").strip():
        check_batch(os.environ["SOILCI_INCOMING_BATCH"].strip())
    dvc_yaml = yaml.safe_load((PROJECT / "dvc.yaml").read_text()) or {}
    deps, outs, params = stage_paths(dvc_yaml)
    produced = [Path(o) for o in outs]
    sources = sorted({
        "dvc.yaml", ".dvcignore", *params,
        *(d for d in deps if not any(Path(d) == o or o in Path(d).parents for o in produced)),
    })
    outside = [s for s in sources if Path(s).is_absolute() or ".." in Path(s).parts]
    if outside:
        raise StackError(f"{PROJECT}/dvc.yaml: dependencies outside the project: {', '.join(outside)}")
    # A file inside a mirrored folder comes with the folder.
    sources = [s for s in sources if not any(Path(t) in Path(s).parents for t in sources)]
    for rel in sources:
        mirror(rel)
    for change in apply_overrides(WORK / "params.yaml"):
        log(f"override {change}")
    STATE.mkdir(exist_ok=True)
    for rel in {".stack", *(Path(s).parts[0] for s in sources)}:
        if (WORK / rel).exists():
            chown_tree(WORK / rel)
    os.chown(WORK, UID, GID)
    log(f"workspace in step with the project ({len(sources)} paths)")


def run_prepare(_args: argparse.Namespace) -> int:
    sync_workspace()
    drop_privileges()
    if not (WORK / ".dvc").is_dir():
        # The workspace is not a git repository; DVC's lock file and caches track its state.
        if dvc("init", "--no-scm", "-q") != 0:
            return 2
        dvc("config", "core.analytics", "false")
        dvc("config", "core.check_update", "false")
        dvc("config", "core.site_cache_dir", str(WORK / ".dvc" / "site-cache"))
    return dvc("repro", "--single-item", "prepare")


def run_drift(_args: argparse.Namespace) -> int:
    """dvc.yaml's drift command, as DVC would run it; on a failed gate, say why."""
    dvc_yaml = yaml.safe_load((WORK / "dvc.yaml").read_text()) or {}
    cmd = ((dvc_yaml.get("stages") or {}).get("drift") or {}).get("cmd")
    if not cmd:
        raise StackError(f"{WORK}/dvc.yaml: no stages.drift.cmd")
    verdict = WORK / "reports" / "drift.json"
    for line in [cmd] if isinstance(cmd, str) else cmd:
        code = subprocess.call(shlex.split(line), cwd=WORK)
        if code != 0:
            if code == 1 and verdict.exists():
                log("drift gate failed (reports/drift.json): nothing is trained or registered on this "
                    "data, alias staging stays where it was")
            return code
    return 0


def run_train(_args: argparse.Namespace) -> int:
    return dvc("repro", "--single-item", "train", "evaluate")


def model_digest(model_dir: Path) -> str:
    """Content hash of the model folder (file names and bytes), independent of timestamps."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_register(args: argparse.Namespace) -> int:
    """Register the evaluated model unless this very model is already the staging version."""
    model_dir = WORK / "models" / "model"
    if not model_dir.is_dir():
        raise StackError(f"{model_dir}: no trained model; the train service did not run")
    record = STATE / "registered.json"
    digest = model_digest(model_dir)
    previous = json.loads(record.read_text()) if record.exists() else {}
    if previous.get("digest") == digest and staging_version(args.model_name) == previous.get("version"):
        log(f"model unchanged: {args.model_name} version {previous['version']} stays at alias staging")
        return 0
    code = subprocess.call(["soil-trainer", "register", *args.register_args], cwd=WORK)
    if code != 0:
        return code
    version = staging_version(args.model_name)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"digest": digest, "version": version}))
    tmp.replace(record)
    log(f"{args.model_name} version {version} now has alias staging")
    return 0


def staging_version(model_name: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, "staging").version)
    except MlflowException:
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="sync the workspace with the project, then dvc repro prepare")
    sub.add_parser("drift", help="run the drift gate (dvc.yaml's drift command)")
    sub.add_parser("train", help="dvc repro the train and evaluate stages")
    sub.add_parser("register", help="soil-trainer register (further arguments are passed on), "
                                    "skipped when the model is already the staging version")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "register":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.register_args = extra
    args.model_name = os.environ.get("MODEL_NAME") or "soil-carbon"
    commands = {"prepare": run_prepare, "drift": run_drift, "train": run_train, "register": run_register}
    try:
        return commands[args.command](args)
    except StackError as exc:
        log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
