#!/usr/bin/env bash
# Builds the predictor, CPU predictor (no torch) and gateway images (what `make images` runs). Settings,
# from the environment:
#   PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE, GATEWAY_IMAGE  tags (default clip-similarity/predictor:dev,
#                    clip-similarity/predictor-cpu:dev, clip-similarity/gateway:dev)
#   PYTHON_IMAGE     base image (default python:3.11-slim-bookworm; scripts/base-image.sh builds a local one)
#   TORCH_INDEX_URL  package index of another torch variant, e.g. https://download.pytorch.org/whl/cu126
#   CONTAINER_ENGINE podman (default) or docker
# With podman, local package sources from the host's pip configuration (file:// extra indexes and
# find-links directories) are mounted read-only into the builds and offered to pip beside PyPI, so
# wheels already on disk (torch's are several GB) are not downloaded again. LOCAL_PIP_SOURCES=0 turns
# that off. Both builds share their base layers; each image caches its dependencies apart from the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${CONTAINER_ENGINE:-podman}
predictor=${PREDICTOR_IMAGE:-clip-similarity/predictor:dev}
predictor_cpu=${PREDICTOR_CPU_IMAGE:-clip-similarity/predictor-cpu:dev}
gateway=${GATEWAY_IMAGE:-clip-similarity/gateway:dev}
args=(--network host --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim-bookworm}")

if [ "$engine" = podman ] && [ "${LOCAL_PIP_SOURCES:-1}" = 1 ]; then
  pip=(python3 -m pip)
  indexes=() links=() roots=()
  for url in ${PIP_EXTRA_INDEX_URL:-} $("${pip[@]}" config get global.extra-index-url 2>/dev/null || true); do
    path=${url#file://}
    [ "$path" != "$url" ] && [ -d "$path" ] || continue
    indexes+=("$url")
    # A PEP 503 index in DIR/simple links to its files relative to DIR: mount DIR.
    [ "$(basename "$path")" = simple ] && roots+=("$(dirname "$path")") || roots+=("$path")
  done
  for dir in ${PIP_FIND_LINKS:-} $("${pip[@]}" config get global.find-links 2>/dev/null || true); do
    dir=${dir#file://}
    [ -d "$dir" ] || continue
    links+=("$dir") roots+=("$dir")
  done
  for root in $(printf '%s\n' "${roots[@]}" | sort -u); do
    args+=(--volume "$root:$root:ro")
  done
  [ ${#indexes[@]} -eq 0 ] || args+=(--build-arg "PIP_EXTRA_INDEX_URL=$(printf '%s\n' "${indexes[@]}" | sort -u | xargs)")
  [ ${#links[@]} -eq 0 ] || args+=(--build-arg "PIP_FIND_LINKS=$(printf '%s\n' "${links[@]}" | sort -u | xargs)")
fi

build() {  # TAG DOCKERFILE [ARGS...]
  local tag=$1 file=$2 start=$SECONDS
  shift 2
  echo "build-images: $tag from $file"
  "$engine" build "${args[@]}" "$@" --tag "$tag" --file "$file" .
  echo "build-images: $tag built in $((SECONDS - start))s"
}
build "$gateway" Dockerfile.gateway
build "$predictor_cpu" Dockerfile.predictor-cpu
build "$predictor" Dockerfile.predictor ${TORCH_INDEX_URL:+--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL"}
"$engine" images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
  | grep -F -e "${predictor%:*}:" -e "${predictor_cpu%:*}:" -e "${gateway%:*}:" || true
