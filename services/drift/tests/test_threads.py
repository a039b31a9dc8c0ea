"""The gate's thread limit: one by default, never more than the CPUs the process may use (the mechanism's
own tests: libs/contracts/tests/test_threads.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from soil_drift.errors import ParamsError
from soil_drift.threads import THREADS_ENV, available_cpus, gate_threads, limited_threads


def test_default_is_one_thread_and_the_variable_is_capped_by_the_cpus():
    assert gate_threads({}) == 1
    assert gate_threads({THREADS_ENV: "1000"}) == available_cpus()
    assert available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_a_params_error_naming_the_variable(value):
    with pytest.raises(ParamsError, match=THREADS_ENV):
        gate_threads({THREADS_ENV: value})


def test_limited_threads_caps_the_blas_pool_and_restores_it():
    np.ones((2, 2)) @ np.ones((2, 2))  # the BLAS library is loaded
    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    with limited_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == before
