#!/usr/bin/env bash
# Port-forwards the gateway of the kind install and sends one /compare/ request with a generated image,
# then runs the chart's `helm test`. Like kind-up.sh it needs a real cluster, so it cannot run on the
# project's development machines.
set -euo pipefail
NAMESPACE=${NAMESPACE:-clip-similarity}
RELEASE=${RELEASE:-clip-similarity}
PORT=${PORT:-8000}
PYTHON=${PYTHON:-python3}

svc=$(kubectl -n "$NAMESPACE" get svc -l app.kubernetes.io/instance="$RELEASE",app.kubernetes.io/component=gateway \
  -o jsonpath='{.items[0].metadata.name}')
kubectl -n "$NAMESPACE" port-forward "svc/$svc" "$PORT:80" >/dev/null &
pf=$!
trap 'kill "$pf" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

img=$(mktemp --suffix .png)
"$PYTHON" -c "from PIL import Image; Image.new('RGB', (224, 224), (220, 30, 30)).save('$img')"
echo "POST /compare/ (a red square against two captions):"
curl -sSf -F image=@"$img" -F text="a red square" -F text="a photo of a dog" "http://127.0.0.1:$PORT/compare/"
echo
rm -f "$img"
helm test "$RELEASE" -n "$NAMESPACE" --logs
