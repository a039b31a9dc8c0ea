"""The one boundary between a console script and its verbs (as httpx's ``map_exceptions`` is for HTTP).

Every ``main(argv=None) -> int`` is ``run_main(...)``: our errors become their exit code and one line
on stderr; a foreign error that a package knows how to name is mapped to ours by ``translate``; any
other exception is a crash, exit 70 with its traceback, never a verdict (see ``errors.ExitCode``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Mapping

from soil_contracts.errors import ExitCode, SoilError
from soil_contracts.redact import redact

Command = Callable[[argparse.Namespace], int]


def run_main(
    prog: str,
    parser: argparse.ArgumentParser,
    commands: Mapping[str, Command],
    argv: list[str] | None = None,
    *,
    translate: Callable[[BaseException], SoilError | None] | None = None,
    command_attr: str = "command",
    threads_env: str | None = None,
) -> int:
    """Parse ``argv``, run the chosen command, and turn every outcome into an exit code.

    Args:
        prog: the program name for messages (``soil-drift``).
        parser: the argparse parser, with subcommands stored under ``command_attr``.
        commands: subcommand name -> function returning the exit code.
        argv: arguments (default: ``sys.argv[1:]``).
        translate: maps a foreign exception (pandas, DVC, Docker, MLflow) to one of ours, or None.
        threads_env: the variable naming the command's BLAS/OpenMP thread limit (default 1, see
            ``threads.numeric_threads``); None leaves the pools as they are.

    Returns:
        The command's own code; ``SoilError.exit_code``; 2 for a usage error; 70 for a crash; 130 on Ctrl-C
        (an ``Interrupted`` returns its own: 143 for SIGTERM).
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on a usage error, 0 on --help
        return int(exc.code or 0)
    name = getattr(args, command_attr, None) or ""
    where = f"{prog} {name}".strip()
    try:
        if threads_env is None:
            return int(commands[name](args))
        from soil_contracts.threads import limited_threads, numeric_threads

        with limited_threads(numeric_threads(threads_env)):
            return int(commands[name](args))
    except KeyboardInterrupt as exc:  # Ctrl-C, or an Interrupted that names its signal (SIGTERM: 143)
        signal_name = getattr(exc, "signal_name", "")
        print(f"{where}: interrupted{f' ({signal_name})' if signal_name else ''}", file=sys.stderr)
        return int(getattr(exc, "exit_code", ExitCode.INTERRUPTED))
    except SoilError as exc:
        return _report(where, exc)
    except Exception as exc:  # noqa: BLE001 - the boundary: everything else is mapped or a crash
        mapped = translate(exc) if translate else None
        if mapped is not None:
            return _report(where, mapped)
        text = redact("".join(traceback.format_exception(exc)))
        print(text, file=sys.stderr, end="")
        print(
            f"{where}: internal error (exit {int(ExitCode.INTERNAL)}, a crash, not a verdict): "
            f"{type(exc).__name__}: {redact(str(exc)).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


def _report(where: str, exc: SoilError) -> int:
    print(f"{where}: error: {redact(str(exc))}", file=sys.stderr)
    return int(exc.exit_code)
