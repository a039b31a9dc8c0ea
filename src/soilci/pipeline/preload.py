"""Local stages forked from one preloaded interpreter, instead of a fresh Python behind ``sh -c`` each.

A stage's command is one of our console scripts (``soil-trainer train ...``, ``soil-drift check ...``), and
a fresh interpreter spends most of a stage's CPU importing scikit-learn, SciPy, pandas, MLflow and skops:
train used 7.6 CPU-s here, 3.5 of them imports. ``--local`` runs instead fork each such stage from a
server process that imported those libraries once (the standard library's ``multiprocessing``
``forkserver``), so a run pays the imports once, and a process that runs many pipelines (the test suite)
pays them once in all. The stage packages (soil_trainer, soil_drift, soil_contracts) are not preloaded:
each stage imports them afresh, so an edited module is what runs.

A forked stage is what ``sh -c <cmd>`` ran: the same entry point and arguments, its own session (so
stopping its process group reaches what it started, and a terminal's Ctrl-C reaches the driver only), the
tree as working directory, the stage's environment (PYTHONIOENCODING included), stdout and stderr on one
pipe, its exit code (the runner reports a death by signal N as 128 + N, as sh does). Any other command (a
pipe, ``&&``, quotes, a carriage return, another program) still runs under ``sh -c``, and
``SOILCI_LOCAL_PRELOAD=0`` sends every stage there.

The server pays for itself from the second stage: a run starts one only when at least MIN_STAGES_TO_START
of its stages are stale (a drift-only rerun took 2.4-2.8 s under sh -c, 6.7-7.2 s starting a server).
Differences that remain: ``ps`` shows a forked stage as the forkserver's command line (the stage log names
its pid), and the server, as part of the driver's process group, gets a terminal's Ctrl-C in the ~50 ms
before it ignores SIGINT.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from soil_contracts.errors import ExitCode
from soilci.errors import ConfigError, StageFailed

PRELOAD_ENV = "SOILCI_LOCAL_PRELOAD"
# The console scripts whose stages are forked: their distributions are soilci's `local` extra.
STAGE_SCRIPTS = ("soil-trainer", "soil-drift")
# Third-party modules the stages import, heaviest first; the server imports each once (preload_server).
# The stage packages (soil_trainer, soil_drift, soil_contracts) are left out.
LIBRARIES = (
    "mlflow", "mlflow.sklearn", "scipy.stats", "scipy.signal", "sklearn.pipeline", "sklearn.cross_decomposition",
    "sklearn.ensemble", "sklearn.linear_model", "sklearn.model_selection", "skops.io", "pandas", "pandera",
    "pyarrow.parquet", "matplotlib", "matplotlib.pyplot", "threadpoolctl",
)
SERVER_MODULE = "soilci.pipeline.preload_server"  # the server's one preload: ignore SIGINT, import, freeze
# Characters that give a command a meaning only a shell knows (operators, quoting, expansion, comments).
# Whitespace other than spaces and tabs (a carriage return, say) is refused too: shlex and sh split on it
# differently.
SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]{}~#!")
# A run starts the server only when it has at least this many stale stages: the server's imports (about
# 5 CPU-s) cost more than one stage's own (1-3.5 s). Once it runs, every later stage of the process forks.
MIN_STAGES_TO_START = 2
NOT_STARTED = 130  # a forked stage whose driver was interrupted before it learned the stage's pid
LOST = 255  # multiprocessing's exit code for a child whose server died before reporting it


def preload_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether local stages are forked from the preloaded interpreter: ``SOILCI_LOCAL_PRELOAD`` 1 (default) or 0.

    Raises:
        ConfigError: the variable holds anything else (exit 2).
    """
    raw = (os.environ if environ is None else environ).get(PRELOAD_ENV, "1")
    if raw not in ("0", "1"):
        raise ConfigError(f"{PRELOAD_ENV}={raw!r}: expected 1 (fork local stages from a preloaded interpreter, "
                          f"the default) or 0 (a fresh process under sh -c for each)")
    return raw == "1"


@functools.cache
def _entry_point(script: str) -> str | None:
    """``module:function`` of one of STAGE_SCRIPTS in this environment, or None when it is not installed."""
    from importlib.metadata import entry_points

    found = entry_points(group="console_scripts", name=script)
    return next(iter(found)).value if found else None


def preloaded_command(cmd: str) -> tuple[str, str, list[str]] | None:
    """``(script, entry point, arguments)`` when ``cmd`` is a plain call of one of STAGE_SCRIPTS, else None.

    Plain: printable characters, spaces and tabs, none in SHELL_SYNTAX, so the shell would only split it
    into words where shlex does.
    """
    if any(c in SHELL_SYNTAX or not (c.isprintable() or c == "\t") for c in cmd):
        return None
    words = shlex.split(cmd)
    if not words or words[0] not in STAGE_SCRIPTS:
        return None
    entry = _entry_point(words[0])
    return (words[0], entry, words[1:]) if entry else None


@functools.cache
def _context():
    """The forkserver context, its server told to import SERVER_MODULE when it starts (with the first stage)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([SERVER_MODULE])
    return context


def _server():
    """multiprocessing's one ForkServer of this process (its pid and stop are private in Python 3.11)."""
    from multiprocessing import forkserver

    return forkserver._forkserver


def server_running() -> bool:
    """Whether this process has a preload server up (started, and not found dead since)."""
    pid = getattr(_server(), "_forkserver_pid", None)
    return pid is not None and _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is not a zombie (a dead child not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _server_survives(grace: float = 2.0) -> bool:
    """Whether the server still runs after ``grace`` seconds; False as soon as it is seen dead.

    A killed server's pipes close a moment before the kernel marks it a zombie, so a stage's lost report
    can arrive while the server still looks alive.
    """
    import time

    deadline = time.monotonic() + grace
    while server_running():
        if time.monotonic() > deadline:
            return True
        time.sleep(0.01)
    return False


def stop_server() -> None:
    """Kill the server (it may be in the middle of its imports) and forget it; the next stage starts another.

    Called when the driver is interrupted while it waits for the server: the server would otherwise go on
    importing for seconds after the driver has gone.
    """
    server = _server()
    with contextlib.suppress(Exception):
        if server._forkserver_pid is not None:
            os.kill(server._forkserver_pid, signal.SIGKILL)
        server._stop()  # closes its pipe, reaps it, removes its socket


class ForkedStage:
    """A stage forked from the preloaded interpreter, driven like the ``subprocess.Popen`` of ``sh -c``.

    ``pid`` leads the stage's own process group; ``stdout`` reads its stdout and stderr (bytes);
    ``wait(timeout)`` returns the exit code (-N after signal N, as Popen's) or raises
    ``subprocess.TimeoutExpired``.
    """

    def __init__(self, script: str, entry: str, args: list[str], *, cwd: Path, env: Mapping[str, str],
                 stage: str = "") -> None:
        self.args = [script, *args]
        self.stage = stage or script
        context = _context()
        out_read, out_write = os.pipe()
        go_read, go_write = os.pipe()
        self.stdout = open(out_read, "rb")  # noqa: SIM115 - closed by the runner, as Popen's is
        # The child's ends, as Connections: pickling one passes its fd to the server with the request.
        child_out, child_go = Connection(out_write, readable=False), Connection(go_read, writable=False)
        process = context.Process(target=_run_stage, name=f"soilci stage {script}",
                                  args=(script, entry, args, str(cwd), dict(env), child_out, child_go))
        try:
            process.start()  # starts the server if none runs, then waits while it imports LIBRARIES
        except BaseException:
            os.close(go_write)  # a child forked anyway reads no go-ahead and exits before running anything
            self.stdout.close()
            stop_server()  # not left importing for seconds after the driver is gone
            raise
        finally:
            child_out.close()
            child_go.close()
        self._process = process
        self._lost = False
        self.pid = process.pid
        try:
            os.write(go_write, b"1")
        finally:
            os.close(go_write)

    @property
    def returncode(self) -> int | None:
        """The exit code once the stage ended (-N after signal N), else None."""
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the stage to end; its exit code.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
            StageFailed: the server died (killed) before reporting the stage's end (exit 3); a stage still
                running then is stopped, so nothing writes outputs the run will not record.
        """
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        if self._process.exitcode == LOST and not self._lost and not _server_survives():
            self._lost = True  # said once; a second wait (the runner stopping the stage) returns the code
            stop_server()
            running = _alive(self.pid)
            if running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            raise StageFailed(self.stage, ExitCode.UNAVAILABLE, (
                f"stage {self.stage!r}: soilci's preload server (the process local stages fork from) ended while "
                f"the stage ran, so its exit code is unknown; "
                f"{'the stage, still running, was killed' if running else 'the stage had ended'}. Rerun; "
                f"{PRELOAD_ENV}=0 runs each stage in a process of its own"))
        return self.returncode


def start_local_stage(stage: str, cmd: str, *, cwd: Path, env: dict[str, str], stale: int,
                      log_fh) -> subprocess.Popen | ForkedStage:
    """A local stage's process, in its own session: stopping its group reaches whatever the command started,
    and a Ctrl-C in the terminal reaches the driver only, which stops the stage and records it.

    A plain call of soil-trainer or soil-drift is forked from the preloaded interpreter once one runs in
    this process, or starts one when ``stale`` (the run's stale stages) is at least MIN_STAGES_TO_START;
    the log then says so in a line of its own. Anything else runs under ``sh -c``.
    """
    command = preloaded_command(cmd) if preload_enabled(env) else None
    if command is not None and (server_running() or stale >= MIN_STAGES_TO_START):
        proc = ForkedStage(*command, cwd=cwd, env=env, stage=stage)
        log_fh.write(f"# forked as pid {proc.pid} from soilci's preloaded interpreter "
                     f"(set {PRELOAD_ENV}=0 to run each stage in a process of its own)\n")
        log_fh.flush()
        return proc
    return subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _run_stage(script: str, entry: str, args: list[str], cwd: str, env: dict[str, str], out: Connection,
               go: Connection) -> None:
    """In the forked child: become the stage's process (session, fds, cwd, environment, argv), then run it."""
    import atexit
    import io
    import traceback
    from importlib import import_module

    os.setsid()
    # The server ignores SIGINT (a terminal's Ctrl-C); the stage stops on the driver's SIGINT, as under sh.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not os.read(go.fileno(), 1):
        os._exit(NOT_STARTED)
    go.close()
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    out.close()
    # Unbuffered text on the pipe, as PYTHONUNBUFFERED gives sh's stages, in PYTHONIOENCODING's encoding.
    encoding, _, errors = env.get("PYTHONIOENCODING", "").partition(":")
    for fd, default_errors, name in ((1, "strict", "stdout"), (2, "backslashreplace", "stderr")):
        setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=encoding or "utf-8",
                                            errors=errors or default_errors, line_buffering=True,
                                            write_through=True))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(Path(sys.executable).parent / script), *args]
    module, _, function = entry.partition(":")
    try:
        code = getattr(import_module(module), function)()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # a stage's own handler returns 130 first; this is the fallback
        code = 130
    except BaseException:  # noqa: BLE001 - what an uncaught exception does to a script: traceback, exit 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what an interpreter's exit runs (MLflow ends an open run, logging flushes)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
