"""The exit-code contract of every soil-ci console script, and the root of every error hierarchy.

| code | meaning |
| --- | --- |
| 0 | success (for a gate: passed, or drift accepted with a warning) |
| 1 | a verdict: a gate said no (drift, a metric past its limit, a delivery check refused) |
| 2 | bad input, params, arguments or repository state; nothing was written |
| 3 | a service the command needs did not answer (MLflow, Docker engine, registry) |
| 4 | an image failed to build or push |
| 5 | a model was refused before loading: its files do not match the digest recorded at registration, or it is not in the one format soil-ci loads (skops, soil-ci's own type allowlist); none of its code ran |
| 70 | an unexpected internal error (a bug): never a verdict (``EX_SOFTWARE`` from BSD sysexits.h) |
| 130 | interrupted: SIGINT (Ctrl-C), 128 + 2 as shells report it |
| 143 | interrupted: SIGTERM (``kill``, ``docker stop``, a CI runner cancelling the job), 128 + 15 |

A pipeline stage's own exit code passes through ``soilci pipeline`` unchanged.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by ``soilci``, ``soil-drift``, ``soil-trainer`` and ``soil-model-api``."""

    OK = 0
    VERDICT = 1
    BAD_INPUT = 2
    UNAVAILABLE = 3
    BUILD_FAILED = 4
    UNTRUSTED_MODEL = 5
    INTERNAL = 70
    INTERRUPTED = 130
    TERMINATED = 143


class SoilError(Exception):
    """Root of each package's error hierarchy; ``exit_code`` is what the CLI boundary returns."""

    exit_code: int = ExitCode.BAD_INPUT


class Interrupted(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP that a command turned into an orderly stop; exit code 128 + the signal's number.

    A ``KeyboardInterrupt``, so it unwinds through ``except Exception`` blocks as Ctrl-C does.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum  # 130 SIGINT, 143 SIGTERM, 129 SIGHUP (the shells' convention)
        super().__init__(self.signal_name)


class ContractError(SoilError, ValueError):
    """A shared record (model metadata, run or release record) is missing, unreadable or invalid."""


class UntrustedModelError(SoilError):
    """A model refused before loading (exit 5): digest mismatch, no recorded digest, or an unsafe format."""

    exit_code = ExitCode.UNTRUSTED_MODEL
