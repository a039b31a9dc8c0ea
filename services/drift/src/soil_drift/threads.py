"""How many threads the gate's numeric libraries may use: one by default, never more than the CPUs it may run on.

The gate's linear algebra is small (a PCA of at most ``spectral.PCA_FIT_ROWS`` x bands, projections of
<= 50 columns), so a second BLAS thread saves a few tens of milliseconds on an idle machine. On a busy
one (a shared CI runner) OpenBLAS's threads wait for each other and for cores other jobs hold: measured
on 2 shared cores at load 5-7, the pooled-PCA eigendecomposition took 0.05-0.13 s with one thread and
0.25-1.6 s with two. ``SOIL_DRIFT_THREADS`` raises the limit; the CPUs the process may use (its affinity
mask and its cgroup's CPU quota) cap it, as a container's ``--cpus`` is invisible to ``os.cpu_count()``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from soil_drift.errors import ParamsError

THREADS_ENV = "SOIL_DRIFT_THREADS"
DEFAULT_THREADS = 1
CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


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


def gate_threads(environ: dict[str, str] | None = None) -> int:
    """Threads for BLAS, OpenMP and Arrow: ``SOIL_DRIFT_THREADS`` (default 1), at most ``available_cpus()``.

    Raises:
        ParamsError: when the variable is set to something other than a positive whole number.
    """
    raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    wanted = DEFAULT_THREADS
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ParamsError(f"{THREADS_ENV}={raw!r}: expected a positive whole number of threads")
        wanted = int(raw)
    return min(wanted, available_cpus())


@contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Limit the BLAS and OpenMP pools that numpy and scipy loaded to ``threads`` inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield
