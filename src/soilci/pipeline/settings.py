"""The driver's environment settings, read and checked before a run writes anything.

``SOILCI_STOP_TIMEOUT`` (both modes: how long a stopped stage gets before it is killed), ``SOILCI_LOCAL_PRELOAD`` (``--local``), ``SOILCI_STAGE_MEMORY`` and
``SOILCI_STAGE_CPUS`` (stage containers). A value the run could not use is bad input, exit 2, at the start:
not a crash at the first Ctrl-C or container start, half-way through a run.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

from soilci.errors import ConfigError

# Seconds a stopped stage gets to exit after the signal before it is killed (docker stop's default is 10).
STOP_TIMEOUT_ENV, STOP_TIMEOUT = "SOILCI_STOP_TIMEOUT", 10.0
STAGE_MEMORY_ENV, STAGE_MEMORY = "SOILCI_STAGE_MEMORY", "4g"
STAGE_CPUS_ENV, STAGE_CPUS = "SOILCI_STAGE_CPUS", "2"
# Docker's memory limit: a whole number of bytes, or one with a unit b, k, m or g (as `docker run --memory`).
MEMORY = re.compile(r"[1-9][0-9]*[bkmg]?", re.IGNORECASE)
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker refuses less than 6 MiB


def _number(raw: str) -> float:
    """``raw`` as a finite float, else NaN (which no bound accepts)."""
    try:
        value = float(raw)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def stop_timeout() -> float:
    """SOILCI_STOP_TIMEOUT in seconds (default 10); ``check_settings`` reads it as a run starts.

    Raises:
        ConfigError: not a finite number of seconds >= 0 (exit 2).
    """
    raw = os.environ.get(STOP_TIMEOUT_ENV, "")
    value = _number(raw) if raw.strip() else STOP_TIMEOUT
    if not value >= 0:  # NaN too
        raise ConfigError(f"{STOP_TIMEOUT_ENV}={raw!r}: expected a number of seconds >= 0 (default {STOP_TIMEOUT:g})")
    return value


def stage_limits(environ: Mapping[str, str] | None = None) -> tuple[str, float]:
    """Each stage container's memory limit (Docker's format, ``4g``) and CPUs (``2``): the variables or defaults.

    Raises:
        ConfigError: a memory that is not Docker's format or is below 6 MiB; CPUs that are not a finite
            number above 0 (exit 2).
    """
    environ = os.environ if environ is None else environ
    memory = environ.get(STAGE_MEMORY_ENV, "").strip() or STAGE_MEMORY
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    if not MEMORY.fullmatch(memory) or (
            int(memory.rstrip("bkmgBKMG")) * units.get(memory[-1].lower(), 1) < MIN_MEMORY_BYTES):
        raise ConfigError(f"{STAGE_MEMORY_ENV}={memory!r}: expected Docker's memory format, at least 6 MiB "
                          f"(4g, 512m, 8589934592; default {STAGE_MEMORY})")
    raw = environ.get(STAGE_CPUS_ENV, "").strip() or STAGE_CPUS
    cpus = _number(raw)
    if not cpus > 0:  # NaN too
        raise ConfigError(f"{STAGE_CPUS_ENV}={raw!r}: expected a number of CPUs above 0 (1.5, 2; default {STAGE_CPUS})")
    return memory, cpus


def check_settings(*, local: bool) -> None:
    """Read every setting the run will use, so a bad one stops it before anything is written.

    Raises:
        ConfigError: the first bad setting, named with the values it accepts (exit 2).
    """
    from soilci.pipeline.preload import preload_enabled

    stop_timeout()
    if local:
        preload_enabled()
    else:
        stage_limits()
