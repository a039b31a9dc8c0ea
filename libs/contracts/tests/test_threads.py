"""The stages' thread limit: one BLAS/OpenMP thread by default, also for pools that load inside the verb."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from soil_contracts.threads import (
    POOL_VARIABLES,
    ThreadsError,
    available_cpus,
    cgroup_cpu_limit,
    limited_threads,
    numeric_threads,
)

VARIABLE = "SOIL_TEST_THREADS"


def test_cgroup_v2_quota_is_rounded_up_to_whole_cpus(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2=cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_limit(v2=cpu_max) is None


def test_cgroup_v1_quota_and_unlimited(tmp_path):
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("50000\n")
    period.write_text("100000\n")
    missing = tmp_path / "absent"
    assert cgroup_cpu_limit(v2=missing, v1_quota=quota, v1_period=period) == 1
    quota.write_text("-1\n")
    assert cgroup_cpu_limit(v2=missing, v1_quota=quota, v1_period=period) is None
    assert cgroup_cpu_limit(v2=missing, v1_quota=missing, v1_period=missing) is None


def test_default_is_one_thread_and_the_variable_is_capped_by_the_cpus():
    assert numeric_threads(VARIABLE, {}) == 1
    assert numeric_threads(VARIABLE, {VARIABLE: "1000"}) == available_cpus()
    assert available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_an_error_naming_the_variable(value):
    with pytest.raises(ThreadsError, match=VARIABLE):
        numeric_threads(VARIABLE, {VARIABLE: value})


def test_limited_threads_caps_the_blas_pool_and_restores_it_and_the_variables():
    np.ones((2, 2)) @ np.ones((2, 2))  # the BLAS library is loaded
    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    variables = {name: os.environ.get(name) for name in POOL_VARIABLES}
    with limited_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
        assert all(os.environ[name] == "1" for name in POOL_VARIABLES)
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == before
    assert {name: os.environ.get(name) for name in POOL_VARIABLES} == variables


# A fresh interpreter whose command loads scipy's and numpy's BLAS only inside the verb, as the stages'
# verbs do; it prints every BLAS pool's size as the verb saw it.
PROBE = """
import argparse, json, sys
from soil_contracts.cli import run_main
def probe(args):
    import numpy, scipy.linalg
    from threadpoolctl import threadpool_info
    scipy.linalg.eigh(numpy.eye(3))
    print(json.dumps([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]))
    return 0
parser = argparse.ArgumentParser()
parser.add_argument("command")
sys.exit(run_main("probe", parser, {"go": probe}, ["go"], threads_env=sys.argv[1] if len(sys.argv) > 1 else None))
"""


def blas_pools(*args: str, env: dict[str, str] | None = None) -> list[int]:
    clean = {k: v for k, v in os.environ.items() if k not in POOL_VARIABLES and k != VARIABLE}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env={**clean, **(env or {})}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_pools_that_load_inside_the_verb_get_the_limit_too():
    if available_cpus() < 2:
        pytest.skip("one CPU: every pool has one thread anyway")
    unlimited = blas_pools()
    assert unlimited and max(unlimited) > 1  # without a limit, OpenBLAS takes every core
    assert blas_pools(VARIABLE) == [1] * len(unlimited)
    assert blas_pools(VARIABLE, env={VARIABLE: "2"}) == [2] * len(unlimited)


def test_a_bad_variable_fails_the_command_with_exit_2_before_it_runs():
    result = subprocess.run([sys.executable, "-c", PROBE, VARIABLE], env={**os.environ, VARIABLE: "all"},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{VARIABLE}='all': expected a positive whole number of threads" in result.stderr
