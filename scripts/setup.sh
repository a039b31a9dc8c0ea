#!/usr/bin/env bash
# Prepare a machine for soil-ci: Docker engine, a base image, the Python environment. Idempotent.
# Installs missing system packages with apt-get when run as root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*" >&2; }
UV_VERSION=0.13.9

# System packages the tests and the local stack use (Docker engine, compose v1, debootstrap,
# a registry for delivery tests, headless Chromium for the report screenshot).
want=(docker.io:dockerd docker-compose:docker-compose debootstrap:debootstrap
      docker-registry:docker-registry git:git chromium:chromium)
missing=()
for pair in "${want[@]}"; do
  command -v "${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; install them (as root: apt-get install ${missing[*]})"; exit 2
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Docker engine: start one when none answers.
if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then log "no Docker engine answers and this is not root: start dockerd"; exit 3; fi
  log "starting dockerd"
  nohup dockerd >/var/log/soilci-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/soilci-dockerd.log >&2; log "dockerd did not start"; exit 3; }
fi

# Base image: the official one when a registry answers, else a local debootstrap build.
BASE_IMAGE="$(scripts/build-base-image.sh "${BASE_IMAGE:-soilci-base:bookworm}" | tail -1)"
export BASE_IMAGE
log "BASE_IMAGE=$BASE_IMAGE"

# Python environment: uv from PyPI, then the locked workspace.
if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]]; then
  log "installing uv $UV_VERSION"
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
# The interpreter: the distribution's own python3 when it is 3.11 or newer, as in the images (Debian builds
# it with profile-guided and link-time optimisation and links libpython in statically; a default source
# build such as pyenv's does neither: here its pure-Python loops ran 25% slower and a pipeline test module
# used 9% more CPU). UV_PYTHON or an older system python3 leaves the choice to uv.
python=()
if [[ -z "${UV_PYTHON:-}" ]] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  python=(--python /usr/bin/python3)
fi
uv sync --frozen --all-packages --extra local -q "${python[@]}"  # the extra: `soilci pipeline --local` runs the stages here
log "Python environment ready in .venv"
