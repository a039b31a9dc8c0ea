"""What a stage's ending means: the gates whose exit 1 is a verdict, each exit code in words, the log's tail."""

from __future__ import annotations

import signal
from pathlib import Path

from soil_contracts.errors import ExitCode

# Stages whose exit code 1 is a verdict (the gate said no), not a crash.
GATES = {"drift": "drift gate", "evaluate": "benchmark RMSE ceiling"}
LOG_TAIL_LINES = 15
# What a stage's exit code says (soil_contracts.errors.ExitCode): only 70, or a signal, is a crash.
EXIT_MEANINGS = {
    ExitCode.VERDICT: ("failed", ""),
    ExitCode.BAD_INPUT: ("refused its input", "bad input or params"),
    ExitCode.UNAVAILABLE: ("could not reach a service it needs", "unavailable"),
    ExitCode.BUILD_FAILED: ("could not build an image", "build failed"),
    ExitCode.UNTRUSTED_MODEL: ("refused an untrusted model", "untrusted model"),
    ExitCode.INTERNAL: ("crashed", "an internal error, traceback in its log"),
}


def exit_meaning(code: int, *, with_code: bool = True) -> str:
    """What a stage's exit ``code`` means: ``refused its input (exit 2: bad input or params)``, or without
    the code ``refused its input``; a death by signal is named (``was killed by SIGKILL (exit 137)``)."""
    if code in EXIT_MEANINGS:
        phrase, detail = EXIT_MEANINGS[code]
    elif code > 128 and code - 128 in {s.value for s in signal.Signals}:
        phrase, detail = f"was killed by {signal.Signals(code - 128).name}", ""
    else:
        phrase, detail = "failed", ""
    if not with_code:
        return phrase
    return f"{phrase} (exit {code}{f': {detail}' if detail else ''})"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a stage log (\"\" when it cannot be read), for the message a failure prints."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
