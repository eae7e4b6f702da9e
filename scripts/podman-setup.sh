#!/usr/bin/env bash
# Makes podman usable for `make images` / `make test-images` on a Debian machine, as root:
#   - apt-get installs podman, runc and debootstrap when podman is missing;
#   - writes /etc/containers/containers.conf (only when absent) choosing runc, since crun refuses to run
#     on hosts with hybrid cgroups, and default ulimits low enough for sandboxes that forbid raising them.
# Idempotent; without root it only checks that podman is there.
set -euo pipefail

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 ||
   ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "podman-setup: podman, runc and debootstrap are needed; install them with:" \
         "sudo apt-get install podman runc debootstrap" >&2
    exit 1
  fi
  echo "podman-setup: apt-get install podman runc debootstrap"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
if [ ! -e "$conf" ] && [ "$(id -u)" = 0 ]; then
  echo "podman-setup: writing $conf (runtime runc, default ulimits)"
  mkdir -p "$(dirname "$conf")"
  cat >"$conf" <<'CONF'
# Written by clip-similarity's scripts/podman-setup.sh.
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
fi
podman --version
