"""KServe's and Knative's admission rules for what the chart renders, transcribed from their source.

No cluster runs here, so the webhooks' checks that the chart depends on are re-stated as Python, each with
the function it comes from (repositories github.com/kserve/kserve at tags v0.15.2 to v0.20.0, and
github.com/knative/serving at knative-v1.15.0 and later):

KServe, pkg/apis/serving/v1beta1/inference_service_validation.go:
- validateAutoScalingCompExtension: `deploymentMode == "RawDeployment"` (0.15) / `"Standard"` (0.16+)
  selects the HPA or KEDA checks by autoscalerClass; any other mode gets the Knative (KPA) checks.
- validateScalingHPACompExtension: scaleMetric in AutoscalerAllowedHPAMetricsList (cpu, memory; default
  cpu), a cpu scaleTarget of 1 to 100, autoScaling metrics of type Resource only.
- validateScalingKedaCompExtension: "ScaleMetric is not supported for KEDA"; External metrics need a query
  and target.value; Resource cpu needs a Utilization target.
- validateScalingKPACompExtension: "customizing deploymentStrategy is only supported for raw deployment
  mode"; scaleMetric in AutoscalerAllowedKPAMetricsList (concurrency, rps).
- validateInferenceServiceAutoscaler: autoscalerClass in AutoscalerAllowedClassList (hpa, external,
  keda, none).
KServe, pkg/apis/serving/v1beta1/inference_service_defaults.go, DefaultInferenceService (the mutating
webhook, which runs before validation): from 0.17 it rewrites RawDeployment to Standard and Serverless to
Knative; 0.16 has no such rewrite. KServe 0.15's constants know only RawDeployment / Serverless / ModelMesh
(pkg/constants/constants.go), and its GetDeploymentMode ignores any other annotation value.

Knative Serving, pkg/apis/serving/fieldmask.go and k8s_validation.go (what KServe's revision template
carries in Knative mode):
- PodSpecMask: serviceAccountName, containers, volumes, imagePullSecrets, enableServiceLinks and
  automountServiceAccountToken=false always; affinity, nodeSelector, tolerations, securityContext only
  with their kubernetes.podspec-* feature flag; terminationGracePeriodSeconds never ("Disallowed fields").
- ContainerMask: the container fields allowed (startupProbe from knative-v1.15.0); SecurityContextMask:
  the container securityContext fields allowed.
- validateContainersPorts / validateContainerPorts: one port at most, named "", "h2c" or "http1".
"""

from __future__ import annotations

from typing import Any

KSERVE_VERSIONS = ((0, 15), (0, 16), (0, 17), (0, 20))
FLAGS = {
    "affinity": "kubernetes.podspec-affinity",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "tolerations": "kubernetes.podspec-tolerations",
    "securityContext": "kubernetes.podspec-securitycontext",
}
POD_ALWAYS = {"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks"}
# ComponentExtensionSpec fields of a KServe predictor: KServe's own, not part of the Knative pod spec.
KSERVE_EXTENSION = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
    "annotations", "deploymentStrategy",
}  # fmt: skip
CONTAINER_ALLOWED = {
    "name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy", "livenessProbe",
    "ports", "readinessProbe", "resources", "securityContext", "startupProbe", "terminationMessagePath",
    "terminationMessagePolicy", "volumeMounts",
}  # fmt: skip
CONTAINER_SECURITY_ALLOWED = {
    "capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
    "allowPrivilegeEscalation", "seccompProfile", "privileged",
}  # fmt: skip


def _mode(annotations: dict[str, str], version: tuple[int, int]) -> str:
    """The deploymentMode annotation as KServe's validating webhook sees it (after its defaulter)."""
    mode = annotations.get("serving.kserve.io/deploymentMode", "")
    if version >= (0, 17):
        mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)
    return mode


def kserve_errors(isvc: dict[str, Any], version: tuple[int, int]) -> list[str]:
    """What KServe `version`'s webhooks refuse in `isvc`, or its mode being unknown to that version."""
    annotations = isvc["metadata"].get("annotations", {})
    spec = isvc["spec"]["predictor"]
    mode = _mode(annotations, version)
    raw, knative = ("Standard", "Knative") if version >= (0, 16) else ("RawDeployment", "Serverless")
    errors = []
    if mode not in (raw, knative, "RawDeployment", "Serverless"):
        errors.append(f"KServe {version} knows no deploymentMode {mode!r}")
    klass = annotations.get("serving.kserve.io/autoscalerClass")
    if klass is not None and klass not in ("hpa", "external", "keda", "none"):
        errors.append(f"[{klass}] is not a supported autoscaler class type")
    if mode == raw:
        if klass == "hpa":
            errors += _hpa_errors(spec)
        elif klass == "keda":
            errors += _keda_errors(spec)
    else:
        errors += _kpa_errors(spec)
    return errors


def _hpa_errors(spec: dict[str, Any]) -> list[str]:
    metric = spec.get("scaleMetric", "cpu")
    errors = [] if metric in ("cpu", "memory") else [f"[{metric}] is not a supported metric"]
    target = spec.get("scaleTarget")
    if target is not None and metric == "cpu" and not 1 <= target <= 100:
        errors.append("the target utilization percentage should be a [1-100] integer")
    for m in spec.get("autoScaling", {}).get("metrics", []):
        if m["type"] != "Resource":
            errors.append(f"invalid HPA metric source type with value [{m['type']}]")
    return errors


def _keda_errors(spec: dict[str, Any]) -> list[str]:
    errors = ["ScaleMetric is not supported for KEDA"] if "scaleMetric" in spec else []
    for m in spec.get("autoScaling", {}).get("metrics", []):
        if m["type"] == "External":
            external = m.get("external") or {}
            if not external.get("metric", {}).get("query"):
                errors.append("the query should not be empty")
            if external.get("target", {}).get("value") is None:
                errors.append("the target threshold value should not be empty")
        elif m["type"] == "Resource":
            if m["resource"]["name"] == "cpu" and m["resource"]["target"]["type"] != "Utilization":
                errors.append("the cpu target value type should be Utilization")
        else:
            errors.append(f"unknown KEDA metric type with value [{m['type']}]")
    return errors


def _kpa_errors(spec: dict[str, Any]) -> list[str]:
    errors = []
    if "deploymentStrategy" in spec:
        errors.append("customizing deploymentStrategy is only supported for raw deployment mode")
    metric = spec.get("scaleMetric", "concurrency")
    if metric not in ("concurrency", "rps"):
        errors.append(f"[{metric}] is not a supported metric")
    return errors


def knative_errors(isvc: dict[str, Any], flags: set[str]) -> list[str]:
    """What Knative Serving (>= 1.15, feature `flags` Enabled) refuses in the revision KServe makes."""
    spec = isvc["spec"]["predictor"]
    errors = []
    for field in set(spec) - KSERVE_EXTENSION - POD_ALWAYS:
        if field == "automountServiceAccountToken" and spec[field] is False:
            continue
        if FLAGS.get(field) not in flags:
            errors.append(f"must not set the field(s): {field}")
    ports = [p for c in spec["containers"] for p in c.get("ports", [])]
    if len(ports) > 1:
        errors.append("more than one container port is set")
    if ports and ports[0].get("name", "") not in ("", "h2c", "http1"):
        errors.append(f"Port name {ports[0]['name']} is not allowed")
    for c in spec["containers"]:
        errors += [f"must not set the field(s): containers.{f}" for f in set(c) - CONTAINER_ALLOWED]
        extra = set(c.get("securityContext", {})) - CONTAINER_SECURITY_ALLOWED
        errors += [f"must not set the field(s): securityContext.{f}" for f in extra]
    return errors
