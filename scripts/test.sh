#!/usr/bin/env bash
# Run the whole test suite (unit, Docker, end-to-end) on this machine, setting it up first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
