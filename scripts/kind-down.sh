#!/usr/bin/env bash
# Deletes the kind cluster made by kind-up.sh (and everything in it).
set -euo pipefail
kind delete cluster --name "${CLUSTER:-clip-similarity}"
