"""The gate's thread limit: ``SOIL_DRIFT_THREADS`` (default 1), never more than the CPUs it may run on.

The mechanism and its measurements are shared by every stage: ``soil_contracts.threads``.
"""

from __future__ import annotations

from collections.abc import Mapping

from soil_contracts.threads import (
    ThreadsError,
    available_cpus,
    cgroup_cpu_limit,
    limited_threads,
    numeric_threads,
)
from soil_drift.errors import ParamsError

THREADS_ENV = "SOIL_DRIFT_THREADS"

__all__ = ["THREADS_ENV", "available_cpus", "cgroup_cpu_limit", "gate_threads", "limited_threads"]


def gate_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads for BLAS, OpenMP and Arrow: ``SOIL_DRIFT_THREADS`` (default 1), at most ``available_cpus()``.

    Raises:
        ParamsError: when the variable is set to something other than a positive whole number.
    """
    try:
        return numeric_threads(THREADS_ENV, environ)
    except ThreadsError as exc:
        raise ParamsError(str(exc)) from None
