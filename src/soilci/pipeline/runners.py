"""Runners: the same stage command in its service container or here, its output streamed to a log."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from soil_contracts.git import git_revision
from soil_contracts.redact import redact
from soilci.errors import LocalStagesUnavailable, StageFailed
from soilci.pipeline.dvc import Stage
from soilci.pipeline.ownership import chown_tree
from soilci.pipeline.preload import start_local_stage
from soilci.pipeline.requirements import LOCAL_EXTRA, missing_requirements
from soilci.pipeline.settings import stage_limits, stop_timeout
from soilci.pipeline.stage_images import ensure_image

# Containers run as this user when the driver is root and the tree is root's (the images' user).
IMAGE_USER = "10001:10001"
# Environment passed into stage containers from the host, by prefix; MLFLOW_* (credentials) only
# to the stages that talk to the tracking server. SOIL_DRIFT_* and SOIL_TRAINER_* are the services' own
# settings (their thread limits), which a container stage must see as a --local one does.
PASS_ENV_PREFIXES = ("MLFLOW_", "SOILCI_", "SOIL_DRIFT_", "SOIL_TRAINER_")
MLFLOW_STAGES = frozenset({"train", "register"})
# The network of the stages that reach MLflow: a Docker network's name (the compose stack's, so they
# reach `mlflow`), or `host` (a tracking server on the host's loopback); unset: Docker's default bridge.
# Other stages get no network at all.
STAGE_NETWORK_ENV = "SOILCI_STAGE_NETWORK"
TMPFS = {"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"}
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET")  # variables whose values never reach a run log
RUN_ID_LABEL = "org.soilci.run-id"
STAGE_LABEL = "org.soilci.stage"
PROJECT_LABEL = "org.soilci.project"  # the tree a stage container writes into
DOCKER_RUN_FAILED = 125  # as `docker run` exits when the container itself cannot start
LOCAL_TRACKING_DIR = "mlruns"  # relative: the same folder of the tree inside a container and here

OnLine = Callable[[str], None]


def secrets_in_env(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Values of variables named like credentials (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``), longest first."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if any(w in k.upper() for w in SECRET_WORDS) and len(v) >= 4}
    return tuple(sorted(values, key=len, reverse=True))


def _stream_lines(chunks: Iterable, log_fh, on_line: OnLine) -> None:
    """Write whole lines to the log and ``on_line``, with URL credentials and env secrets masked first.

    Lines, not chunks, are redacted, so a secret split across two chunks is still caught.
    """
    secrets = secrets_in_env()
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode(errors="replace") if isinstance(chunk, bytes) else chunk
        *lines, buffer = buffer.split("\n")
        for line in lines:
            _emit(redact(line, secrets), log_fh, on_line, "\n")
    if buffer:
        _emit(redact(buffer, secrets), log_fh, on_line, "")


def _emit(line: str, log_fh, on_line: OnLine, end: str) -> None:
    log_fh.write(line + end)
    log_fh.flush()
    if line.strip():
        on_line(line.rstrip())


def stage_env(root: Path, stage: str | None = None, *, revision: str | None = None) -> dict[str, str]:
    """Where things run, for a stage: the git revision (no git in the images) and MLflow/soilci settings.

    ``stage`` given and not one of MLFLOW_STAGES: no MLFLOW_* variable (no credentials) at all.
    ``revision``: the tree's ``git_revision``, when the caller has it already.
    """
    revision = revision or git_revision(root)
    env = {k: v for k, v in os.environ.items() if k.startswith(PASS_ENV_PREFIXES)}
    if stage is not None and stage not in MLFLOW_STAGES:
        return {k: v for k, v in env.items() if not k.startswith("MLFLOW_")} | {"SOILCI_GIT_REVISION": revision}
    env["SOILCI_GIT_REVISION"] = revision
    # Without a tracking server, runs go to the tree's (git-ignored) mlruns/, wherever the stage runs:
    # a file store, the one backend mlflow-skinny has, which MLflow 3 only opens when asked to.
    if "MLFLOW_TRACKING_URI" not in env:
        env["MLFLOW_TRACKING_URI"] = LOCAL_TRACKING_DIR
        env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return env


def written_tops(root: Path, stages: Iterable[Stage]) -> list[Path]:
    """The top-level folders (or files) of the tree that the stages write."""
    stages = list(stages)
    tops = {Path(out).parts[0] for stage in stages for out in stage.outs}
    if "MLFLOW_TRACKING_URI" not in os.environ and any(s.name in MLFLOW_STAGES for s in stages):
        tops.add(LOCAL_TRACKING_DIR)
    return [root / t for t in sorted(tops)]


def stop_process_group(proc: subprocess.Popen, timeout: float | None = None) -> None:
    """Stop a stage started in its own session: SIGINT to its group, SIGKILL after ``timeout`` seconds.

    SIGINT, as a Ctrl-C in a terminal would send, lets a Python stage unwind (its atomic writes remove
    their temp files). A second signal to the driver while it waits kills the group at once.
    """
    timeout = stop_timeout() if timeout is None else timeout
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    with contextlib.suppress(ProcessLookupError):  # whatever of the group is left, the shell's children too
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def stop_container(container, timeout: float | None = None) -> None:
    """Stop a stage container: SIGINT (through docker-init), then killed after ``timeout`` seconds."""
    timeout = stop_timeout() if timeout is None else timeout
    try:
        container.kill(signal="SIGINT")
        container.wait(timeout=timeout)
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - gone already, the wait timed out, or a second signal: kill now
        with contextlib.suppress(Exception):
            container.kill()


class _Runner:
    """What both runners share: the tree they run in and its git revision, which every stage is told."""

    root: Path

    @functools.cached_property
    def revision(self) -> str:
        """The tree's git revision, looked up once per run (two git calls)."""
        return git_revision(self.root)


class ContainerRunner(_Runner):
    """Runs a stage's cmd in its service image, the working tree bind-mounted read-write at /work.

    Each container carries the labels ``org.soilci.run-id`` and ``org.soilci.stage``.
    """

    mode = "containers"

    def __init__(self, root: Path, client, *, run_id: str = "", on_build_line: OnLine | None = None) -> None:
        self.root = root
        self.client = client
        self.run_id = run_id
        self.on_build_line = on_build_line
        self.images: dict[str, str] = {}
        self.built: dict[str, bool] = {}
        self.user, self.chown_to = self._user()
        self.network = os.environ.get(STAGE_NETWORK_ENV) or None
        self.reaped = False

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

    def leftovers(self) -> list:
        """Stage containers of this tree (by label, or older ones by their bind mount), any state."""
        found = []
        for container in self.client.containers.list(all=True, filters={"label": STAGE_LABEL}):
            labels = container.labels or {}
            sources = {m.get("Source") for m in container.attrs.get("Mounts") or []}
            if labels.get(PROJECT_LABEL) == str(self.root) or str(self.root) in sources:
                found.append(container)
        return found

    def remove_run_containers(self) -> None:
        """Remove this run's stage containers (stopping any still running), e.g. after an interrupt."""
        for container in self.leftovers():
            if (container.labels or {}).get(RUN_ID_LABEL) == self.run_id:
                stop_container(container)
                with contextlib.suppress(Exception):
                    container.remove(force=True)

    def reap(self, on_line: OnLine) -> int:
        """Remove stage containers an earlier driver left (killed with -9): they would write into the tree."""
        self.reaped = True
        removed = 0
        for container in self.leftovers():
            labels = container.labels or {}
            on_line(f"removing stage container {container.short_id} ({labels.get(STAGE_LABEL)}, run "
                    f"{labels.get(RUN_ID_LABEL) or '?'}, {container.status}) left by an earlier run of this tree")
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed += 1
        return removed

    def run(self, stage: Stage, log: Path, on_line: OnLine) -> int:
        """The stage's exit code. Raises StageFailed when Docker cannot start its container."""
        if not self.reaped:
            self.reap(on_line)
        image = self.image(stage.service)
        dirs = written_tops(self.root, [stage])
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        if self.chown_to is not None:
            uid, gid = (int(x) for x in IMAGE_USER.split(":"))
            for d in dirs:
                chown_tree(d, uid, gid)
        try:
            return self._run_container(image, stage, log, on_line)
        finally:
            if self.chown_to is not None:
                for d in dirs:
                    chown_tree(d, *self.chown_to)

    def _run_container(self, image: str, stage: Stage, log: Path, on_line: OnLine) -> int:
        import docker.errors

        try:
            container = self.client.containers.run(image, **self.container_options(stage))
        except docker.errors.DockerException as exc:
            raise StageFailed(stage.name, DOCKER_RUN_FAILED,
                              f"stage {stage.name!r}: Docker could not start {image}: {exc}") from exc
        try:
            with log.open("a") as fh:
                fh.write(f"$ {stage.cmd}\n# image {image}, user {self.user}\n")
                fh.flush()
                _stream_lines(container.logs(stream=True, follow=True), fh, on_line)
            return int(container.wait().get("StatusCode", 1))
        except BaseException:  # interrupted (or the engine failed): stop the stage before it is removed
            stop_container(container)
            raise
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def network_options(self, stage: Stage) -> dict:
        """No network for stages that need none; MLflow's stages: SOILCI_STAGE_NETWORK, else the bridge."""
        if stage.name not in MLFLOW_STAGES:
            return {"network_mode": "none"}
        if self.network == "host":
            return {"network_mode": "host"}
        return {"network": self.network} if self.network else {"network_mode": "bridge"}

    def container_options(self, stage: Stage) -> dict:
        """``containers.run`` keyword arguments for ``stage`` (all but the image).

        The tree is mounted read-only at /work, with only the top folders the stage writes read-write;
        the root filesystem is read-only (a tmpfs at /tmp, HOME); memory and CPUs are bounded.
        """
        volumes = {str(self.root): {"bind": "/work", "mode": "ro"}}
        for top in written_tops(self.root, [stage]):
            volumes[str(top)] = {"bind": f"/work/{top.relative_to(self.root).as_posix()}", "mode": "rw"}
        memory, cpus = stage_limits()
        return {
            "entrypoint": ["/bin/sh", "-c"],
            "command": [stage.cmd],
            "working_dir": "/work",
            "volumes": volumes,
            "user": self.user,
            "environment": {"HOME": "/tmp", **stage_env(self.root, stage.name, revision=self.revision)},
            "labels": {RUN_ID_LABEL: self.run_id, STAGE_LABEL: stage.name, PROJECT_LABEL: str(self.root)},
            "detach": True,
            # docker-init as PID 1 passes signals on to the stage (a PID 1 ignores those it has no handler for).
            "init": True,
            "read_only": True,
            "tmpfs": dict(TMPFS),
            "mem_limit": memory,
            "nano_cpus": int(cpus * 1e9),
            "pids_limit": 512,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            **self.network_options(stage),
        }


# sys.path values on which soilci's local extra was found complete: a process checks once per path.
_LOCAL_COMPLETE: set[tuple[str, ...]] = set()


class LocalRunner(_Runner):
    """Runs a stage's cmd here, with this environment's soil-* console scripts first on PATH."""

    mode = "local"

    @staticmethod
    def check_installed() -> None:
        """Refuse to run stages here when this environment lacks what their commands import.

        Raises:
            LocalStagesUnavailable: soilci's ``local`` extra is not fully installed (exit 3), e.g. in the
                operator image, whose stages run in their service images only; names what is missing.
        """
        if tuple(sys.path) in _LOCAL_COMPLETE:
            return
        missing = missing_requirements()
        if not missing:
            _LOCAL_COMPLETE.add(tuple(sys.path))  # installed distributions stay installed for the process
            return
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise LocalStagesUnavailable(
            f"--local runs the stages here, and this environment lacks what they import: {shown}. Install "
            f"soilci's {LOCAL_EXTRA!r} extra (uv sync --all-packages --extra {LOCAL_EXTRA}, or pip install "
            f"'soilci[{LOCAL_EXTRA}]'), or run the stages in their images: soilci pipeline without --local")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: dict[str, str] = {}
        self.built: dict[str, bool] = {}
        self.stale = 0  # the run's stale stages, as the driver counted them (preload.start_local_stage)

    def run(self, stage: Stage, log: Path, on_line: OnLine) -> int:
        """The stage's exit code."""
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, **stage_env(self.root, revision=self.revision), "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        env.setdefault("PYTHONUNBUFFERED", "1")
        for out in stage.outs:
            (self.root / out).parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {stage.cmd}\n")
            fh.flush()
            proc = start_local_stage(stage.name, stage.cmd, cwd=self.root, env=env, stale=self.stale, log_fh=fh)
            assert proc.stdout is not None
            try:
                _stream_lines(iter(lambda: proc.stdout.read1(65536), b""), fh, on_line)
                code = proc.wait()
            except BaseException:
                stop_process_group(proc)
                raise
            finally:
                proc.stdout.close()
            if code < 0:  # ended by a signal: reported as sh does, 128 + N (137 for an out-of-memory kill)
                fh.write(f"# ended by {signal.Signals(-code).name if -code in set(signal.Signals) else -code}\n")
                code = 128 - code
        return code
