#!/usr/bin/env bash
# Run the whole test suite (unit, Docker, end-to-end) on this machine, setting it up first.
#
# Tests run on SOILCI_TEST_WORKERS pytest-xdist workers (default 3: most tests wait on Docker, a server
# or a subprocess, so a 2-core machine keeps three busy); a module's tests, and those of a folder that
# shares a costly fixture, stay on one worker (conftest.py). Arguments go to pytest: `-n 0` runs serially.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# One BLAS/OpenMP thread per process unless the caller chose (conftest.py says why): three workers on two
# cores otherwise spin OpenBLAS threads waiting for each other's cores.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -n "${SOILCI_TEST_WORKERS:-3}" --dist loadscope --no-loadscope-reorder "$@"
