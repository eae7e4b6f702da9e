#!/usr/bin/env bash
# Builds a local stand-in for the `python:3.11-slim-bookworm` base image from Debian packages, for machines
# that can reach a Debian mirror but no image registry. Usage: scripts/base-image.sh [IMAGE]
# (default localhost/python:3.11-slim-bookworm). Does nothing when IMAGE exists. Needs root and debootstrap.
# The Dockerfiles take any such base through their PYTHON_IMAGE build argument.
set -euo pipefail
image=${1:-localhost/python:3.11-slim-bookworm}
if podman image exists "$image"; then
  echo "base-image: $image exists"
  exit 0
fi

# The Debian mirror apt already uses (deb822 or one-line sources), else the public one.
mirror=$(grep -hoE '^URIs: *\S+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 |
  awk '{print $2}') || true
[ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 |
  awk '{print $2}') || true
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
chroot "$rootfs" apt-get install -y -qq --no-install-recommends \
  python3 python3-venv python-is-python3 ca-certificates >/dev/null
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*
# The host's CA bundle: where outbound TLS is re-signed by a local CA, pip inside a build needs it.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$image" >/dev/null
echo "base-image: built $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
