"""How many threads a stage's numeric libraries may use: one by default, never more than the CPUs it may run on.

A stage's linear algebra is small (PCA and PLS of a few hundred spectra by a few hundred bands), so a
second BLAS thread saves tens of milliseconds on an idle machine. On a busy one (a shared CI runner, or
DVC stages beside other jobs) OpenBLAS's threads spin waiting for each other and for cores other jobs
hold. Measured on 2 shared cores at load 5-12: the drift gate's pooled-PCA eigendecomposition took
0.05-0.13 s with one thread and 0.25-1.6 s with two; ten eigendecompositions of the trainer's domain
fit (331 x 430) 0.40 s with one and 1.0-6.6 s with two.

Each console script names its own variable (``SOIL_DRIFT_THREADS``, ``SOIL_TRAINER_THREADS``); the CPUs
the process may use (its affinity mask and its cgroup's CPU quota) cap it, as a container's ``--cpus``
is invisible to ``os.cpu_count()``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from soil_contracts.errors import SoilError

DEFAULT_THREADS = 1
CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
# Read once, when each library loads: OpenBLAS, OpenMP (scikit-learn, scipy) and MKL.
POOL_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class ThreadsError(SoilError):
    """A thread-count variable holds something other than a positive whole number (exit 2)."""


def cgroup_cpu_limit(v2: Path = CGROUP_V2_MAX, v1_quota: Path = CGROUP_V1_QUOTA,
                     v1_period: Path = CGROUP_V1_PERIOD) -> int | None:
    """Whole CPUs the cgroup's CFS quota allows (rounded up, at least 1); None when unlimited or unknown.

    Reads cgroup v2 ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``), else v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: unlimited). Source: the Linux kernel's
    CFS bandwidth control documentation (Documentation/scheduler/sched-bwc.rst).
    """
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            if quota == "max":
                return None
            return max(1, math.ceil(int(quota) / int(period)))
        if v1_quota.is_file() and v1_period.is_file():
            quota_us, period_us = int(v1_quota.read_text()), int(v1_period.read_text())
            return None if quota_us <= 0 or period_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup's CPU quota (>= 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(cpus, limit) if limit is not None else cpus)


def numeric_threads(variable: str, environ: Mapping[str, str] | None = None) -> int:
    """Threads for BLAS, OpenMP and Arrow: ``variable`` (default 1), at most ``available_cpus()``.

    Raises:
        ThreadsError: when the variable is set to something other than a positive whole number.
    """
    raw = (os.environ if environ is None else environ).get(variable, "").strip()
    wanted = DEFAULT_THREADS
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ThreadsError(f"{variable}={raw!r}: expected a positive whole number of threads")
        wanted = int(raw)
    return min(wanted, available_cpus())


@contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in every BLAS and OpenMP pool.

    Pools already loaded are limited through threadpoolctl and restored after the block; pools that load
    inside it (numpy, scipy and scikit-learn each bring their own, imported lazily by the verbs) read
    ``POOL_VARIABLES``, which are set for the block, and keep that size.
    """
    from threadpoolctl import threadpool_limits

    saved = {name: os.environ.get(name) for name in POOL_VARIABLES}
    os.environ.update({name: str(threads) for name in POOL_VARIABLES})
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
