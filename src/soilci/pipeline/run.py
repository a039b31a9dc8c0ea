"""Run dvc.yaml's stages in their service containers (or here, with --local), recording them with DVC.

DVC stays the judge of what is stale and the keeper of dvc.lock and the cache: on the host, each stage
DVC reports as changed is first looked up in DVC's run-cache, else its ``cmd:`` runs in the stage's
image with the working tree mounted at /work, then ``dvc commit`` records it exactly as ``dvc repro``
would. A rerun with nothing changed finds nothing stale and starts no container.
"""

from __future__ import annotations

import contextlib
import fnmatch
import graphlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from soilci.errors import ConfigError, SoilCIError, StageFailed

# Stages whose exit code 1 is a verdict (the gate said no), not a crash.
GATES = {"drift": "drift gate", "evaluate": "benchmark RMSE ceiling"}
# Containers run as this user when the driver is root and the tree is root's (the images' user).
IMAGE_USER = "10001:10001"
# Environment passed into stage containers from the host, by prefix.
PASS_ENV_PREFIXES = ("MLFLOW_", "SOILCI_")
LOG_TAIL_LINES = 15
DOCKER_RUN_FAILED = 125  # as `docker run` exits when the container itself cannot start
LOCAL_TRACKING_DIR = "mlruns"  # relative: the same folder of the tree inside a container and here


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]

    @property
    def service(self) -> str:
        """The image a stage runs in, from its command's program (``soil-drift ...`` -> ``drift``)."""
        program = shlex.split(self.cmd)[0] if self.cmd.strip() else ""
        if not program.startswith("soil-"):
            raise ConfigError(f"dvc.yaml: stage {self.name!r}: cmd must start with a soil-<service> program")
        return program.removeprefix("soil-")


@dataclass
class StageRecord:
    name: str
    outcome: str = "not run"  # up to date | restored | ran | failed | not run
    seconds: float | None = None
    exit_code: int | None = None
    log: str | None = None
    image: str | None = None


@dataclass
class RunRecord:
    run_id: str
    mode: str
    started: str
    repo: str
    stages: list[StageRecord] = field(default_factory=list)
    pull: str | None = None
    exit_code: int | None = None
    stopped_at: str | None = None
    seconds: float | None = None
    images: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# DVC on the host
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _dvc(root: Path) -> Iterator:
    import logging

    from dvc.repo import Repo

    # DVC's progress messages ("Updating lock file") would interleave with ours; its warnings stay.
    logging.getLogger("dvc").setLevel(logging.WARNING)
    # DVC resolves some paths against the working directory, as its CLI runs from the repo.
    with contextlib.chdir(root), Repo(str(root)) as repo:
        yield repo


def load_stages(root: Path) -> list[Stage]:
    """dvc.yaml's stages in dependency order (file order among independent stages)."""
    if not (root / "dvc.yaml").exists():
        raise ConfigError(f"{root / 'dvc.yaml'}: not found; --repo must be the project's working tree")
    try:
        with _dvc(root) as repo:
            found = [
                Stage(
                    name=s.name,
                    cmd=s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd),
                    deps=tuple(d.def_path for d in s.deps),
                    outs=tuple(o.def_path for o in s.outs),
                )
                for s in repo.index.stages
                if getattr(s, "name", None) and s.cmd
            ]
    except ConfigError:
        raise
    except Exception as exc:  # DVC's own errors: not a DVC repo, bad dvc.yaml
        raise ConfigError(f"{root}: DVC cannot read the pipeline ({type(exc).__name__}: {exc})") from exc
    order = {s.name: i for i, s in enumerate(found)}
    producers = {out: s.name for s in found for out in s.outs}
    graph = graphlib.TopologicalSorter()
    for s in found:
        upstream = {
            producer
            for dep in s.deps
            for out, producer in producers.items()
            if producer != s.name and (dep == out or dep.startswith(out.rstrip("/") + "/"))
        }
        graph.add(s.name, *upstream)
    graph.prepare()
    ordered: list[str] = []
    while graph.is_active():
        ready = sorted(graph.get_ready(), key=order.__getitem__)
        ordered.extend(ready)
        graph.done(*ready)
    by_name = {s.name: s for s in found}
    return [by_name[n] for n in ordered]


def is_stale(root: Path, name: str) -> bool:
    """Whether DVC sees the stage's deps, params, command or outputs differ from dvc.lock."""
    with _dvc(root) as repo:
        return bool(repo.status(targets=[name]))


def changed_stages(root: Path) -> dict[str, list]:
    """``dvc status`` of the whole pipeline: stage name -> what changed (empty: all up to date)."""
    with _dvc(root) as repo:
        return {key.split(":")[-1]: value for key, value in repo.status().items()}


def outputs_missing(status: dict[str, list]) -> bool:
    """Whether some recorded output is absent or altered, so pulling the cache could restore it."""
    return any("changed outs" in entry for entries in status.values() for entry in entries
               if isinstance(entry, dict))


def restore_from_run_cache(root: Path, name: str) -> bool:
    """Check the stage's outputs out of DVC's run-cache if this exact run happened before."""
    from dvc.stage.cache import RunCacheNotFoundError

    try:
        with _dvc(root) as repo, repo.lock:
            (stage,) = repo.stage.collect(name)
            repo.stage_cache.restore(stage)
    except RunCacheNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - a partial cache (objects gc'ed) means: run the stage
        return False
    commit_stage(root, name)
    return True


def commit_stage(root: Path, name: str) -> None:
    """``dvc commit -f <stage>``: record outputs in the cache and dvc.lock, as ``dvc repro`` does."""
    with _dvc(root) as repo:
        repo.commit(name, force=True)


def remove_outputs(root: Path, stage: Stage) -> None:
    """Delete a stage's outputs before it runs, as ``dvc repro`` does, so none survives a failure."""
    for out in stage.outs:
        path = root / out
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _dvc_call(root: Path, verb: str, log: Path, **kwargs) -> tuple[bool, str]:
    """Run a DVC repo operation here (no second interpreter start), its outcome appended to ``log``."""
    with log.open("a") as fh:
        fh.write(f"$ dvc {verb} {kwargs}\n")
        try:
            with _dvc(root) as repo:
                if verb == "remote?":
                    return bool(repo.config["core"].get("remote")), ""
                result = getattr(repo, verb)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - DVC's errors (network, missing objects) are reported, not raised
            fh.write(f"{type(exc).__name__}: {exc}\n")
            return False, f"{type(exc).__name__}: {exc}"
        fh.write(f"{result}\n")
        return True, ""


def pull(root: Path, log: Path) -> str:
    """Bring cached outputs into the working tree: ``dvc pull`` from the remote, else ``dvc checkout``.

    Missing objects are not an error: a stage whose outputs cannot be fetched is reproduced.
    Outputs that differ from dvc.lock are replaced, as ``dvc repro`` would replace them.
    """
    has_remote, _ = _dvc_call(root, "remote?", log)
    # force: an output that differs from dvc.lock belongs to a stale stage, which reruns anyway.
    if has_remote:
        ok, why = _dvc_call(root, "pull", log, allow_missing=True, force=True)
        return "pulled" if ok else f"pull incomplete ({why}); missing outputs are reproduced"
    ok, why = _dvc_call(root, "checkout", log, allow_missing=True, force=True)
    return "checked out (no remote)" if ok else f"checkout incomplete ({why})"


def push(root: Path, log: Path) -> None:
    has_remote, _ = _dvc_call(root, "remote?", log)
    if not has_remote:
        raise ConfigError("--push: no DVC remote is configured (dvc remote add -d NAME URL)")
    ok, why = _dvc_call(root, "push", log)
    if not ok:
        raise ConfigError(f"dvc push failed: {why}; see {log}")


# ---------------------------------------------------------------------------------------------
# Stage images: built once per content of their build inputs
# ---------------------------------------------------------------------------------------------

_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def _copy_sources(dockerfile: Path) -> list[str]:
    """Paths the Dockerfile COPYs from the build context (not from other stages)."""
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.strip().split()
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources.extend(args[:-1])
    return sources


def _files_under(root: Path, pattern: str) -> list[Path]:
    matches = sorted(root.glob(pattern)) if any(c in pattern for c in "*?[") else [root / pattern]
    files: list[Path] = []
    for m in matches:
        if m.is_dir():
            files.extend(p for p in sorted(m.rglob("*")) if p.is_file())
        elif m.is_file():
            files.append(m)
    return [f for f in files if not (_IGNORED_PARTS & set(f.parts)) and not fnmatch.fnmatch(f.name, "*.py[co]")]


def input_digest(root: Path, service: str, base_image: str) -> str:
    """sha256 over the Dockerfile, every file it copies from the context, and the base image."""
    dockerfile = root / "services" / service / "Dockerfile"
    if not dockerfile.exists():
        raise ConfigError(f"{dockerfile}: not found (stage image for soil-{service})")
    digest = hashlib.sha256()
    digest.update(f"base {base_image}\n".encode())
    for path in [dockerfile, *(f for src in _copy_sources(dockerfile) for f in _files_under(root, src))]:
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_image(client, root: Path, service: str, on_line: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """The stage image for the tree's current sources: reused if built before, else built (layer-cached).

    Returns (image reference, whether it was built now).
    """
    import docker.errors

    from soilci.images import build_image, image_name, resolve_base_image

    base = resolve_base_image(client)
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        base_id = base
    tag = "in-" + input_digest(root, service, base_id)[:16]
    ref = image_name(service, tag)
    try:
        client.images.get(ref)
        return ref, False
    except docker.errors.ImageNotFound:
        pass
    # VCS_REF = the input digest, so rebuilding the same sources from another commit hits the cache.
    build_image(service, tag=tag, root=root, client=client, buildargs={"VCS_REF": tag}, on_line=on_line)
    return ref, True


# ---------------------------------------------------------------------------------------------
# Runners: the same stage command in a container or here
# ---------------------------------------------------------------------------------------------


def _stream_lines(chunks, log_fh, on_line: Callable[[str], None]) -> None:
    buffer = ""
    for chunk in chunks:
        text = chunk.decode(errors="replace") if isinstance(chunk, bytes) else chunk
        log_fh.write(text)
        log_fh.flush()
        buffer += text
        *lines, buffer = buffer.split("\n")
        for line in lines:
            if line.strip():
                on_line(line.rstrip())
    if buffer.strip():
        on_line(buffer.rstrip())


def stage_env(root: Path) -> dict[str, str]:
    """Where things run, for a stage: the git revision (no git in the images) and MLflow/soilci settings."""
    from soilci.images import git_revision

    env = {k: v for k, v in os.environ.items() if k.startswith(PASS_ENV_PREFIXES)}
    env.setdefault("SOILCI_GIT_REVISION", git_revision(root))
    # Without a tracking server, runs go to the tree's (git-ignored) mlruns/, wherever the stage runs:
    # a file store, the one backend mlflow-skinny has, which MLflow 3 only opens when asked to.
    if "MLFLOW_TRACKING_URI" not in env:
        env["MLFLOW_TRACKING_URI"] = LOCAL_TRACKING_DIR
        env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return env


class ContainerRunner:
    """Runs a stage's cmd in its service image, the working tree bind-mounted read-write at /work."""

    mode = "containers"

    def __init__(self, root: Path, client, on_build_line: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.client = client
        self.on_build_line = on_build_line
        self.images: dict[str, str] = {}
        self.built: dict[str, bool] = {}
        self.user, self.chown_to = self._user()

    def _user(self) -> tuple[str, tuple[int, int] | None]:
        """Run as the invoking user; as root, as the tree's owner, or the image user with chown around."""
        if os.getuid() != 0:
            return f"{os.getuid()}:{os.getgid()}", None
        st = self.root.stat()
        if st.st_uid != 0:
            return f"{st.st_uid}:{st.st_gid}", None
        return IMAGE_USER, (st.st_uid, st.st_gid)

    def image(self, service: str) -> str:
        if service not in self.images:
            ref, built = ensure_image(self.client, self.root, service, self.on_build_line)
            self.images[service], self.built[service] = ref, built
        return self.images[service]

    def _writable_dirs(self, stage: Stage) -> list[Path]:
        tops = {Path(out).parts[0] for out in stage.outs}
        if "MLFLOW_TRACKING_URI" not in os.environ:
            tops.add(LOCAL_TRACKING_DIR)
        return [self.root / t for t in sorted(tops)]

    def run(self, stage: Stage, log: Path, on_line: Callable[[str], None]) -> int:
        image = self.image(stage.service)
        dirs = self._writable_dirs(stage)
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        if self.chown_to is not None:
            uid, gid = (int(x) for x in IMAGE_USER.split(":"))
            for d in dirs:
                _chown_tree(d, uid, gid)
        try:
            return self._run_container(image, stage, log, on_line)
        finally:
            if self.chown_to is not None:
                for d in dirs:
                    _chown_tree(d, *self.chown_to)

    def _run_container(self, image: str, stage: Stage, log: Path, on_line: Callable[[str], None]) -> int:
        import docker.errors

        try:
            container = self._start(image, stage)
        except docker.errors.DockerException as exc:
            raise StageFailed(stage.name, DOCKER_RUN_FAILED,
                              f"stage {stage.name!r}: Docker could not start {image}: {exc}") from exc
        try:
            with log.open("a") as fh:
                fh.write(f"$ {stage.cmd}\n# image {image}, user {self.user}\n")
                fh.flush()
                _stream_lines(container.logs(stream=True, follow=True), fh, on_line)
            return int(container.wait().get("StatusCode", 1))
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _start(self, image: str, stage: Stage):
        return self.client.containers.run(
            image,
            entrypoint=["/bin/sh", "-c"],
            command=[stage.cmd],
            working_dir="/work",
            volumes={str(self.root): {"bind": "/work", "mode": "rw"}},
            user=self.user,
            environment={"HOME": "/tmp", **stage_env(self.root)},
            network_mode="host",  # a tracking server on the host's loopback stays reachable
            labels={"org.soilci.stage": stage.name},
            detach=True,
        )


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if not path.exists():
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


class LocalRunner:
    """Runs a stage's cmd here, with this environment's soil-* console scripts first on PATH."""

    mode = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: dict[str, str] = {}
        self.built: dict[str, bool] = {}

    def run(self, stage: Stage, log: Path, on_line: Callable[[str], None]) -> int:
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, **stage_env(self.root), "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        env.setdefault("PYTHONUNBUFFERED", "1")
        for out in stage.outs:
            (self.root / out).parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {stage.cmd}\n")
            fh.flush()
            proc = subprocess.Popen(
                stage.cmd, shell=True, cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            assert proc.stdout is not None
            _stream_lines(iter(lambda: proc.stdout.read1(65536), b""), fh, on_line)
            return proc.wait()


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


class Progress:
    """One line per finished step; in a terminal, a live spinner with elapsed time and the last log line."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self._live = None

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[Callable[[str], None]]:
        started = time.monotonic()
        last = {"line": ""}

        def render() -> str:
            tail = last["line"][-90:]
            return f"[bold]{label}[/] {time.monotonic() - started:5.1f}s  [dim]{_escape(tail)}[/]"

        if not self.console.is_terminal:  # CI logs: a start line, then the done line
            self.console.print(f"  [dim]{_escape(label)} ...[/]")
            yield lambda line: None
            return
        with self.console.status(render(), spinner="dots") as status:
            stop = threading.Event()

            def tick() -> None:
                while not stop.wait(0.5):
                    status.update(render())

            thread = threading.Thread(target=tick, daemon=True)
            thread.start()

            def on_line(line: str) -> None:
                last["line"] = line

            try:
                yield on_line
            finally:
                stop.set()
                thread.join()

    def done(self, name: str, message: str, style: str = "green", seconds: float | None = None) -> None:
        took = f" [dim]({seconds:.1f}s)[/]" if seconds is not None else ""
        self.console.print(f"  [{style}]{name:<9}[/] {_escape(message)}{took}")

    def info(self, message: str) -> None:
        self.console.print(_escape(message))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _write_record(record: RunRecord, run_dir: Path) -> Path:
    path = run_dir / "run.json"
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def new_run_dir(root: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run_dir = root / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def run_pipeline(
    repo: Path,
    *,
    local: bool = False,
    base: str | None = "origin/main",
    out_dir: Path | None = None,
    push_outputs: bool = False,
    client=None,
) -> int:
    """Run the stale stages in order; 0 when all pass, 1 when a gate stops the run (report written)."""
    root = Path(repo).resolve()
    progress = Progress()
    started = time.monotonic()
    stages = load_stages(root)
    run_dir = new_run_dir(root)
    record = RunRecord(
        run_id=run_dir.name, mode="local" if local else "containers",
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        repo=str(root), stages=[StageRecord(s.name) for s in stages],
    )
    runner: ContainerRunner | LocalRunner | None = None
    rel_run = run_dir.relative_to(root)
    progress.info(f"soilci pipeline: {len(stages)} stages ({record.mode}); logs in {rel_run}/")

    def finish(code: int, stopped_at: str | None = None) -> None:
        record.exit_code, record.stopped_at = code, stopped_at
        record.seconds = round(time.monotonic() - started, 2)
        record.images = dict(runner.images) if runner else {}
        _write_record(record, run_dir)

    status = changed_stages(root)
    if not status:
        for rec in record.stages:
            rec.outcome = "up to date"
        if push_outputs:
            _push_step(root, run_dir, progress)
        finish(0)
        progress.info(f"all {len(stages)} stages up to date; nothing to run ({record.seconds:.1f}s)")
        return 0
    # Something to do: only now is an engine needed (a missing one fails before any work).
    if local:
        runner = LocalRunner(root)
    else:
        from soilci.errors import DockerUnavailable
        from soilci.images import docker_client

        try:
            runner = ContainerRunner(root, client or docker_client())
        except DockerUnavailable as exc:
            finish(exc.exit_code)
            raise DockerUnavailable(f"{exc}; or run the stages without containers: soilci pipeline --local") \
                from exc
    if outputs_missing(status):
        with progress.step("pull"):
            t0 = time.monotonic()
            record.pull = pull(root, run_dir / "pull.log")
        progress.done("pull", record.pull, seconds=time.monotonic() - t0)

    for stage, rec in zip(stages, record.stages, strict=True):
        if not is_stale(root, stage.name):
            rec.outcome = "up to date"
            progress.done(stage.name, "up to date", style="dim")
            continue
        remove_outputs(root, stage)  # as dvc repro does: no output of an earlier run survives
        if restore_from_run_cache(root, stage.name):
            rec.outcome = "restored"
            progress.done(stage.name, "restored from DVC's run-cache")
            continue
        log = run_dir / f"{stage.name}.log"
        rec.log = str(log.relative_to(root))
        t0 = time.monotonic()
        where = "here" if local else f"in soil-{stage.service}"
        try:
            with progress.step(f"{stage.name} ({where})") as on_line:
                if not local:
                    runner.on_build_line = on_line
                    rec.image = runner.image(stage.service)
                code = runner.run(stage, log, on_line)
        except SoilCIError as exc:  # the image did not build, or the engine could not run it
            rec.outcome = "failed"
            finish(exc.exit_code, stage.name)
            raise
        rec.seconds, rec.exit_code = round(time.monotonic() - t0, 2), code
        if code == 0:
            commit_stage(root, stage.name)
            rec.outcome = "ran"
            built = " (image built)" if runner.built.get(stage.service) else ""
            progress.done(stage.name, f"ran {where}{built}", seconds=rec.seconds)
            continue
        rec.outcome = "failed"
        if code == 1 and stage.name in GATES:
            progress.done(stage.name, f"{GATES[stage.name]} failed (exit 1); stopping", style="red",
                          seconds=rec.seconds)
            finish(1, stage.name)
            _report_after_gate(root, base, out_dir or root, progress)
            return 1
        progress.done(stage.name, f"crashed with exit code {code}", style="red", seconds=rec.seconds)
        finish(code, stage.name)
        tail = _tail(log)
        raise StageFailed(
            stage.name, code,
            f"stage {stage.name!r} failed with exit code {code} ({stage.cmd}); log: {log}"
            + (f"\n--- last lines ---\n{tail}" if tail else ""),
        )

    if push_outputs:
        _push_step(root, run_dir, progress)
    finish(0)
    progress.info(f"done in {record.seconds:.1f}s")
    return 0


def _push_step(root: Path, run_dir: Path, progress: Progress) -> None:
    t0 = time.monotonic()
    with progress.step("push"):
        push(root, run_dir / "push.log")
    progress.done("push", "outputs pushed to the DVC remote", seconds=time.monotonic() - t0)


def _report_after_gate(root: Path, base: str | None, out_dir: Path, progress: Progress) -> None:
    """Write the report for a run a gate stopped; a missing base must not hide the gate's verdict."""
    from soilci.errors import SoilCIError
    from soilci.report.build import write_report

    ref = base or "HEAD"
    try:
        files = write_report(root, ref, out_dir)
    except SoilCIError as exc:
        progress.info(f"report not written: {exc}")
        return
    progress.info(f"report: {files.markdown} ({files.verdict.title})")
