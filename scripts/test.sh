#!/usr/bin/env bash
# Run the whole test suite (unit, Docker, end-to-end) on this machine, setting it up first.
#
# Tests run on SOILCI_TEST_WORKERS pytest-xdist workers (default 3: most tests wait on Docker, a server
# or a subprocess, so a 2-core machine keeps three busy); a module's tests, and those of a folder that
# shares a costly fixture, stay on one worker (conftest.py). Arguments go to pytest: `-n 0` runs serially.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec .venv/bin/python -m pytest -n "${SOILCI_TEST_WORKERS:-3}" --dist loadscope --no-loadscope-reorder "$@"
