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
tree as working directory, the stage's environment, stdout and stderr on one pipe, its exit code (minus
the signal's number when a signal ended it). Any other command (a pipe, ``&&``, quotes, another program)
still runs under ``sh -c``, and ``SOILCI_LOCAL_PRELOAD=0`` sends every stage there.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from soilci.errors import ConfigError

PRELOAD_ENV = "SOILCI_LOCAL_PRELOAD"
# The console scripts whose stages are forked: their distributions are soilci's `local` extra.
STAGE_SCRIPTS = ("soil-trainer", "soil-drift")
# Third-party modules the stages import, heaviest first; the server imports each once. The stage packages
# (soil_trainer, soil_drift, soil_contracts) are left out. Last, preload_freeze freezes the lot (gc.freeze).
PRELOAD = (
    "mlflow", "mlflow.sklearn", "scipy.stats", "scipy.signal", "sklearn.pipeline", "sklearn.cross_decomposition",
    "sklearn.ensemble", "sklearn.linear_model", "sklearn.model_selection", "skops.io", "pandas", "pandera",
    "pyarrow.parquet", "matplotlib", "matplotlib.pyplot", "threadpoolctl", "soilci.pipeline.preload_freeze",
)
# Characters that give a command a meaning only a shell knows (operators, quoting, expansion, comments).
SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]{}~#!\n")
NOT_STARTED = 130  # a forked stage whose driver was interrupted before it learned the stage's pid


def preload_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether local stages are forked from the preloaded interpreter: ``SOILCI_LOCAL_PRELOAD`` 1 (default) or 0.

    Raises:
        ConfigError: the variable holds anything else (exit 2).
    """
    raw = (os.environ if environ is None else environ).get(PRELOAD_ENV, "1").strip()
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

    Plain: no character in SHELL_SYNTAX, so the shell would only split it on whitespace.
    """
    if any(c in SHELL_SYNTAX for c in cmd):
        return None
    words = shlex.split(cmd)
    if not words or words[0] not in STAGE_SCRIPTS:
        return None
    entry = _entry_point(words[0])
    return (words[0], entry, words[1:]) if entry else None


@functools.cache
def _context():
    """The forkserver context, its server told to import PRELOAD when it starts (with the first stage)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


class ForkedStage:
    """A stage forked from the preloaded interpreter, driven like the ``subprocess.Popen`` of ``sh -c``.

    ``pid`` leads the stage's own process group; ``stdout`` reads its stdout and stderr (bytes);
    ``wait(timeout)`` returns the exit code (``-N`` after signal N) or raises ``subprocess.TimeoutExpired``.
    """

    def __init__(self, script: str, entry: str, args: list[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        self.args = [script, *args]
        context = _context()
        out_read, out_write = os.pipe()
        go_read, go_write = os.pipe()
        self.stdout = open(out_read, "rb")  # noqa: SIM115 - closed by the runner, as Popen's is
        # The child's ends, as Connections: pickling one passes its fd to the server with the request.
        child_out, child_go = Connection(out_write, readable=False), Connection(go_read, writable=False)
        process = context.Process(target=_run_stage, name=f"soilci stage {script}",
                                  args=(script, entry, args, str(cwd), dict(env), child_out, child_go))
        try:
            process.start()  # waits while the server imports PRELOAD, the first time
        except BaseException:
            os.close(go_write)  # a child forked anyway reads no go-ahead and exits before running anything
            self.stdout.close()
            raise
        finally:
            child_out.close()
            child_go.close()
        self._process = process
        self.pid = process.pid
        try:
            os.write(go_write, b"1")
        finally:
            os.close(go_write)

    @property
    def returncode(self) -> int | None:
        """The exit code once the stage ended, else None."""
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the stage to end; its exit code. Raises subprocess.TimeoutExpired after ``timeout`` s."""
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode


def _run_stage(script: str, entry: str, args: list[str], cwd: str, env: dict[str, str], out: Connection,
               go: Connection) -> None:
    """In the forked child: become the stage's process (session, fds, cwd, environment, argv), then run it."""
    import atexit
    import io
    import signal
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
    # Unbuffered text on the pipe (the runner streams it line by line), as PYTHONUNBUFFERED gives sh's stages.
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True, write_through=True)
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
