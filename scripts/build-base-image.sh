#!/usr/bin/env bash
# Make a Python base image available for the service builds, without a registry if need be.
#
# Usage: scripts/build-base-image.sh [TAG]
#   Prints the image reference to use as BASE_IMAGE on its last line.
#   1. If TAG (default $BASE_IMAGE or soilci-base:bookworm) already exists locally: use it.
#   2. Else try to pull the official python:3.11-slim-bookworm (short timeout).
#   3. Else build TAG from Debian bookworm with debootstrap + docker import, adding the host's
#      extra CA certificates so pip/uv inside `docker build` trust a TLS-intercepting proxy.
set -euo pipefail

tag="${1:-${BASE_IMAGE:-soilci-base:bookworm}}"
official="python:3.11-slim-bookworm"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { echo "[base-image] $*" >&2; }

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "reusing local image $tag"
  echo "$tag"
  exit 0
fi

if [[ "$tag" == "$official" ]] || [[ "${SOILCI_TRY_PULL:-1}" == "1" ]]; then
  if timeout 20 docker pull -q "$official" >/dev/null 2>&1; then
    log "pulled $official"
    [[ "$tag" != "$official" ]] && docker tag "$official" "$tag"
    echo "$tag"
    exit 0
  fi
  log "no registry answered for $official; building $tag with debootstrap"
fi

command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 2; }

work="$(mktemp -d /tmp/soilci-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase \
  --include=python3,python3-venv,ca-certificates,tzdata \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }

# Trust the same extra CAs as the host (public certificates only, never keys).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi

# Keep the image small and match the official image's conveniences.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/*
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"

log "docker import as $tag"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$tag"
