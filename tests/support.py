"""Helpers every test folder shares: free ports, HTTP waits, process groups, project copies.

Import as ``from tests.support import free_port`` (the repo root is on ``pythonpath``).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers below 500; TimeoutError after ``timeout`` s, RuntimeError if ``proc`` exits.

    One client for all the polls: each ``httpx.get`` builds a client and loads the CA bundle, about 50 ms of
    CPU here, which every 0.3 s is a sixth of a core for as long as a server takes to start.
    """
    import httpx

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process for {url} exited with {proc.returncode}")
            try:
                if client.get(url).status_code < 500:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout}s ({last})")


def stop_group(proc: subprocess.Popen | int) -> None:
    """Terminate a process started with ``start_new_session`` and everything it spawned: SIGTERM, then SIGKILL.

    ``proc`` is this process's child, or the pid of one another process started (waited for by its /proc state).
    """
    import signal

    def ended(timeout: float) -> bool:
        if isinstance(proc, subprocess.Popen):
            try:
                proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        return not alive(pid)

    pid = proc.pid if isinstance(proc, subprocess.Popen) else proc
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        if ended(wait):
            break
    try:  # sweep workers that outlived the server process
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux: its /proc state)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# The pull request most tests stand for: the committed demo library (benchmark = SSP.460 folds 1-2,
# ssp460-campaign-1 = folds 4-10) plus a new batch, fold 3, that the branch adds.
PR_BATCH = "ssp460-campaign-2"
PR_FOLDS = [3]


@functools.cache
def demo_library() -> Path:
    """The demo library's spectra plus the PR batch, built once per test process from LimeSoDa."""
    from soil_contracts.library import Scale
    from soil_trainer.library.importer import BatchRequest, import_batch
    from soilci.library.verbs import DEMO_TARGETS, load_spec, run_demo

    root = Path(tempfile.mkdtemp(prefix="soilci-demo-library-"))
    shutil.copy2(REPO_ROOT / "params.yaml", root / "params.yaml")
    run_demo(argparse.Namespace(repo=root, params=None, no_dvc=True))
    req = BatchRequest(source="limesoda:SSP.460", batch_id=PR_BATCH, instrument="vis-NIR spectrometer",
                       lab="LimeSoDa", date="see LimeSoDa SSP.460", axis=None, scale=Scale.REFLECTANCE_PERCENT,
                       targets=DEMO_TARGETS, description="LimeSoDa SSP.460 fold 3: the pull request's batch",
                       folds=PR_FOLDS)
    import_batch(req, load_spec(root, None), root)
    return root


def add_library(project: Path, *, pr_batch: bool = True) -> Path:
    """Give a project copy the demo library's spectra, the PR batch (if asked) and its base listing.

    The base listing says the base revision holds the committed batches, so the PR batch is the drift
    gate's candidate (46 rows) and the committed ones its reference (322 rows).
    """
    from soil_contracts.library import BASE_LISTING, BATCH_FILE, BaseLibrary, BatchMetadata

    source = demo_library()
    for path in sorted((source / "library").rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and (pr_batch or PR_BATCH not in rel.parts):
            target = project / rel
            if not target.exists() or target.name == "spectra.parquet":
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    committed = {p.parent.name: BatchMetadata.load(p).content_sha256
                 for p in (REPO_ROOT / "library" / "batches").glob(f"*/{BATCH_FILE}")}
    bench = BatchMetadata.load(REPO_ROOT / "library" / "benchmark" / BATCH_FILE).content_sha256
    BaseLibrary(batches=committed, benchmark_sha256=bench).save(
        project / BASE_LISTING)
    return project


def copy_project(dest: Path, *, library: bool = True, pr_batch: bool = True) -> Path:
    """Copy the tracked project files (no venv, data or caches) to ``dest`` for isolated runs.

    With ``library``, the copy also gets the demo library's spectra (see ``add_library``).
    """
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-co", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    for rel in files:
        src = REPO_ROOT / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    if library:
        add_library(dest, pr_batch=pr_batch)
    return dest


def add_batch(project: Path, batch_id: str, frame, *, targets: dict[str, str] | None = None) -> Path:
    """Import ``frame`` (sample_id, targets, ``wl_*`` bands in reflectance %) as a new library batch.

    As a lab would: the frame is written as a CSV export and imported with the project's params.
    """
    from soil_contracts.library import Scale
    from soil_trainer.library.importer import BatchRequest, import_batch
    from soilci.library.verbs import load_spec

    targets = targets or {"SOC_target": "%"}
    bands = [c for c in frame.columns if str(c).startswith("wl_")]
    export = project / f"{batch_id}.csv"
    frame[["sample_id", *targets, *bands]].to_csv(export, index=False)
    req = BatchRequest(source=str(export), batch_id=batch_id, instrument="test spectrometer", lab="test lab",
                       date="2026-11", axis=None, scale=Scale.REFLECTANCE_PERCENT, targets=targets)
    path = import_batch(req, load_spec(project, None), project).batch.path
    export.unlink()
    return path


def reproduce(project: Path, *targets: str, **options) -> list[str]:
    """``dvc repro [targets]``: the names of the dvc.yaml stages whose commands ran, in order."""
    from dvc.stage import PipelineStage

    from soilci.pipeline.dvc import open_repo

    with open_repo(project) as repo:
        ran = repo.reproduce(list(targets) or None, **options)
    return [stage.name for stage in ran if isinstance(stage, PipelineStage)]


def set_dvc_config(project: Path, level: str = "repo", *, remote: Path | None = None, cache: Path | None = None,
                   default: bool = False) -> None:
    """Set the project's DVC remote ``local`` (and, with ``default``, make it the default) or its cache
    folder in the ``level`` config ("repo": .dvc/config, "local": the untracked .dvc/config.local), as
    `dvc remote add -d -f`, `dvc remote modify --local ... url` and `dvc cache dir --local` write them,
    through DVC's own Config in this process (a `dvc` CLI costs ~1 CPU-s, mostly imports)."""
    from dvc.config import Config

    with Config(dvc_dir=str(project / ".dvc")).edit(level) as conf:
        if remote is not None:
            conf["remote"]["local"] = {"url": str(remote)}
        if default:
            conf["core"]["remote"] = "local"
        if cache is not None:
            conf["cache"]["dir"] = str(cache)
