#!/usr/bin/env bash
# From nothing to clip-similarity on a local kind cluster (CPU only):
# cluster, images, cert-manager, KServe in Standard mode, the chart, and a wait until it is ready.
# Needs docker, kind, kubectl and helm on PATH, and internet access (images, charts, model weights).
# It cannot run on the project's development machines (no cluster, no registry, no internet there), so
# it is checked only by reading and by `bash -n`; the chart it installs is checked by tests/deploy.
# KServe publishes its controller chart as `kserve-resources` (from v0.17; `kserve` before), beside the
# `kserve-crd` chart; KSERVE_VERSION picks the release (the chart supports 0.16 to 0.20 as is).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CLUSTER=${CLUSTER:-clip-similarity}
NAMESPACE=${NAMESPACE:-clip-similarity}
RELEASE=${RELEASE:-clip-similarity}
TAG=${TAG:-dev}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.17.2}
KSERVE_VERSION=${KSERVE_VERSION:-v0.20.0}
KSERVE_CHARTS=${KSERVE_CHARTS:-oci://ghcr.io/kserve/charts}

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not on PATH" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

echo "kind-up: building and loading images (tag $TAG)"
docker build -f Dockerfile.predictor -t "clip-similarity/predictor:$TAG" .
docker build -f Dockerfile.gateway -t "clip-similarity/gateway:$TAG" .
kind load docker-image --name "$CLUSTER" "clip-similarity/predictor:$TAG" "clip-similarity/gateway:$TAG"

echo "kind-up: cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager rollout status deploy --timeout=300s

echo "kind-up: KServe $KSERVE_VERSION (Standard deployment mode, no Knative or Istio)"
helm upgrade --install kserve-crd "$KSERVE_CHARTS/kserve-crd" --version "$KSERVE_VERSION" \
  --namespace kserve --create-namespace --wait
case "$KSERVE_VERSION" in
  v0.1[0-6].*) kserve_chart=kserve ;;
  *) kserve_chart=kserve-resources ;;
esac
helm upgrade --install kserve "$KSERVE_CHARTS/$kserve_chart" --version "$KSERVE_VERSION" \
  --namespace kserve --wait --set kserve.controller.deploymentMode=Standard

echo "kind-up: clip-similarity (CPU values, local images)"
helm upgrade --install "$RELEASE" helm/clip-similarity --namespace "$NAMESPACE" --create-namespace \
  -f helm/clip-similarity/ci/cpu-values.yaml \
  --set predictor.image.repository=clip-similarity/predictor --set predictor.image.tag="$TAG" \
  --set predictor.image.pullPolicy=Never \
  --set gateway.image.repository=clip-similarity/gateway --set gateway.image.tag="$TAG" \
  --set gateway.image.pullPolicy=Never

echo "kind-up: waiting for the InferenceServices (first start downloads the ViT-B-32 weights)"
kubectl -n "$NAMESPACE" wait inferenceservice --all --for=condition=Ready --timeout=900s
kubectl -n "$NAMESPACE" rollout status deploy -l app.kubernetes.io/component=gateway --timeout=300s
echo "kind-up: ready; next: make kind-smoke (port-forward + a /compare/ request), make kind-down"
