"""What the installed chart does at run time: resources, GPUs, probes, shutdown, routes, labels, notes."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import yaml

from gateway.inputs import Limits
from tests.deploy.chart import (
    CHART,
    ROOT,
    Objects,
    by_kind,
    env_of,
    gateway_env,
    helm_template,
    isvc,
    one,
    predictor_container,
    render,
    render_notes,
)
from tests.deploy.schemas import openapi_errors

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests render the chart with helm

GPU = "nvidia.com/gpu"
KNATIVE = ["kserve.deploymentMode=Knative"]
OPERATOR_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


def spec_of(objects: Objects, key: str) -> dict[str, Any]:
    spec: dict[str, Any] = isvc(objects, key)["spec"]["predictor"]
    return spec


def test_every_predictor_sets_its_cpu_limit(variants: dict[str, Objects]) -> None:
    """Item 6: without a CPU limit KServe's defaulter fills in its configured default (cpuLimit "1" in
    charts/_common/common-patches/configmap-patch.yaml), through setResourceRequirementDefaults, which
    predictor_custom.go's Default calls; the predictor sizes its torch threads from the limit it sees."""
    for name, objects in variants.items():
        for key in ("image", "text"):
            limits = predictor_container(isvc(objects, key))["resources"]["limits"]
            assert {"cpu", "memory"} <= set(limits), (name, key)
    result = helm_template(sets=["predictors.text.resources.limits.cpu=null"])
    assert result.returncode != 0 and "cpu" in result.stderr, result.stderr


def test_each_predictor_has_its_own_resources() -> None:
    objects = render(
        sets=["predictors.image.resources.limits.cpu=8", "predictors.text.resources.requests.cpu=1"]
    )
    image = predictor_container(isvc(objects, "image"))["resources"]
    text = predictor_container(isvc(objects, "text"))["resources"]
    assert image["limits"]["cpu"] == 8 and text["limits"]["cpu"] == "2"
    assert text["requests"]["cpu"] == 1 and image["requests"]["cpu"] == "4"


def test_images_on_a_gpu_and_texts_on_cpu(variants: dict[str, Objects]) -> None:
    """Item 7 and the per-predictor GPU switch: a GPU predictor runs with CLIP_DEVICE=cuda (never `auto`,
    which would serve on the CPU of a GPU node whose driver is too old), a CPU one with cpu."""
    objects = variants["text-on-cpu"]
    image, text = isvc(objects, "image"), isvc(objects, "text")
    assert predictor_container(image)["resources"]["limits"][GPU] == "1"
    assert env_of(predictor_container(image))["CLIP_DEVICE"] == "cuda"
    assert image["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert GPU not in yaml.safe_dump(text)
    assert env_of(predictor_container(text))["CLIP_DEVICE"] == "cpu"
    assert "nodeSelector" not in text["spec"]["predictor"] and "tolerations" not in text["spec"]["predictor"]
    for name, rendered in variants.items():
        for key in ("image", "text"):
            service = isvc(rendered, key)
            device = env_of(predictor_container(service))["CLIP_DEVICE"]
            assert device == (
                "cuda" if GPU in predictor_container(service)["resources"]["limits"] else "cpu"
            ), name
    notes = render_notes(CHART / "ci" / "text-on-cpu-values.yaml")
    assert "Predictors on a GPU: image (1 nvidia.com/gpu); on CPU: text." in notes
    assert "R580" in notes


def test_gpu_predictors_upgrade_without_a_spare_gpu() -> None:
    """Item 10: KServe's default 25 % surge needs a free GPU on every upgrade."""
    objects = render(sets=["predictors.text.gpu.enabled=false"])
    assert spec_of(objects, "image")["deploymentStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    assert "deploymentStrategy" not in spec_of(objects, "text")  # on CPU: KServe's default
    chosen = render(sets=['predictor.deploymentStrategy={"type": "Recreate"}'])
    assert spec_of(chosen, "text")["deploymentStrategy"] == {"type": "Recreate"}
    assert "deploymentStrategy" not in spec_of(render(sets=KNATIVE), "image")  # KServe refuses it there


@pytest.mark.parametrize("mode", [[], KNATIVE])
def test_predictors_get_no_route_from_outside_the_cluster(mode: list[str]) -> None:
    """Item 9: KServe's ingress reconcilers (pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/)
    skip the external route for cluster-local services: kube_ingress_reconciler.go and
    httproute_reconciler.go read networking.kserve.io/visibility, ingress_reconciler.go (Knative mode)
    networking.knative.dev/visibility, which ksvc_reconciler.go copies to the Knative Service's labels
    (RevisionTemplateLabelDisallowedList keeps it off the revision template)."""
    for key in ("image", "text"):
        labels = isvc(render(sets=mode), key)["metadata"]["labels"]
        assert labels["networking.kserve.io/visibility"] == "cluster-local"
        assert labels["networking.knative.dev/visibility"] == "cluster-local"
    open_labels = isvc(render(sets=[*mode, "predictor.clusterLocal=false"]), "image")["metadata"]["labels"]
    assert not any("visibility" in k for k in open_labels)


@pytest.mark.parametrize(
    ("sets", "stall"),
    [
        ([], 120),
        (["predictors.image.stallTimeoutSeconds=30"], 30),
        (["predictors.image.stallTimeoutSeconds=600", "predictor.probes.livenessPeriodSeconds=7"], 600),
    ],
)
def test_liveness_cannot_restart_a_predictor_before_its_stall_bound(sets: list[str], stall: int) -> None:
    """/v2/health/live turns 503 only after a pass has held queued items for the stall timeout; a busy
    predictor whose probe merely times out must survive at least that long."""
    container = predictor_container(isvc(render(sets=sets), "image"))
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert probe["failureThreshold"] * probe["periodSeconds"] >= stall
    assert probe["failureThreshold"] >= 3
    env = env_of(container)
    assert env.get("CLIP_STALL_TIMEOUT_S") == (None if not sets else str(stall))
    assert helm_template(sets=["predictors.text.stallTimeoutSeconds=0"]).returncode != 0


def test_predictors_drain_within_their_grace_in_both_modes() -> None:
    """Standard: the pod's grace is terminationGracePeriodSeconds. Knative refuses that field (fieldmask.go
    PodSpecMask, "Disallowed fields") and gives the pod the revision timeout (BuildPodSpec in
    pkg/reconciler/revision/resources/deploy.go: pod.TerminationGracePeriodSeconds = rev.Spec.TimeoutSeconds);
    the container's preStop (userLifecycle there) waits out queue-proxy's drain, at least drainSleepDuration
    = 30 s (pkg/queue/sharedmain/main.go), before SIGTERM. REST then gRPC drain, 5 s to spare."""
    standard = render(sets=["predictor.terminationGracePeriodSeconds=60"])
    spec = spec_of(standard, "image")
    grace = int(env_of(predictor_container(isvc(standard, "image")))["CLIP_SHUTDOWN_GRACE_S"])
    assert spec["terminationGracePeriodSeconds"] == 60 and 2 * grace + 5 <= 60 and grace >= 25
    for timeout in (60, 300):
        knative = render(sets=[*KNATIVE, f"predictor.timeoutSeconds={timeout}"])
        spec = spec_of(knative, "text")
        assert "terminationGracePeriodSeconds" not in spec and spec["timeout"] == timeout
        grace = int(env_of(predictor_container(isvc(knative, "text")))["CLIP_SHUTDOWN_GRACE_S"])
        assert 30 + 2 * grace + 5 <= timeout and grace >= (timeout - 35) // 2 - 1


def test_monitoring_objects_carry_the_release_label_kube_prometheus_stack_selects() -> None:
    """Item 8: kube-prometheus-stack's default selectors want release=<its release name>."""
    labelled = render(sets=["monitoring.release=kps"])
    for kind in OPERATOR_KINDS:
        for obj in by_kind(labelled, kind):
            assert obj["metadata"]["labels"]["release"] == "kps", kind
    unlabelled = render()
    assert not any(
        "release" in o["metadata"]["labels"] for k in OPERATOR_KINDS for o in by_kind(unlabelled, k)
    )
    assert "set monitoring.release" in render_notes()
    assert "set monitoring.release" not in render_notes(sets=["monitoring.release=kps"])
    assert "set monitoring.release" not in render_notes(sets=["monitoring.additionalLabels.release=kps"])


def test_storage_initializer_example_meets_the_restricted_standard() -> None:
    """Item 11: KServe's default ClusterStorageContainer (config/storagecontainers/default.yaml, v0.15.2 to
    v0.20.0) sets no securityContext, and the storage initializer injector adds only a runAsUser (for
    Istio CNI), so the init container fails `restricted`; the example gives it one. Its image runs as
    uid 1000 (USER 1000 in python/storage-initializer.Dockerfile), so runAsNonRoot holds."""
    path = CHART / "examples" / "clusterstoragecontainer-restricted.yaml"
    example = yaml.safe_load(path.read_text())
    assert (example["apiVersion"], example["kind"]) == (
        "serving.kserve.io/v1alpha1",
        "ClusterStorageContainer",
    )
    assert openapi_errors(example["spec"], "V1alpha1StorageContainerSpec") == []
    sc = example["spec"]["container"]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    prefixes = {f["prefix"] for f in example["spec"]["supportedUriFormats"] if "prefix" in f}
    assert {"s3://", "gs://", "hf://"} <= prefixes
    notes = render_notes(sets=["predictor.model.storageUri=s3://models/clip"])
    assert "examples/clusterstoragecontainer-restricted.yaml" in notes
    assert "clusterstoragecontainer-restricted.yaml" not in render_notes()


def test_knative_variant_admits_every_knative_ingress_and_outlasts_a_cold_start(
    variants: dict[str, Objects],
) -> None:
    """Item 12: Kourier runs in kourier-system, Istio in istio-system, the activator in knative-serving;
    a scale-from-zero GPU start takes longer than a 30 s gateway timeout."""
    objects = variants["knative"]
    policy = one(objects, "NetworkPolicy")["spec"]["ingress"]
    peers = [p.get("namespaceSelector", {}).get("matchLabels", {}) for r in policy for p in r["from"]]
    admitted = {labels.get("kubernetes.io/metadata.name") for labels in peers}
    assert {"knative-serving", "kourier-system", "istio-system"} <= admitted
    timeout = float(gateway_env(objects)["PREDICTOR_TIMEOUT_S"])
    assert timeout >= 120 and spec_of(objects, "image")["timeout"] >= timeout
    assert "WARNING: a predictor may scale to zero" not in render_notes(CHART / "ci" / "knative-values.yaml")
    short = render_notes(CHART / "ci" / "knative-values.yaml", sets=["gateway.predictorTimeoutSeconds=30"])
    assert "WARNING: a predictor may scale to zero, but the gateway waits only 30 s" in short


def test_knative_notes_name_the_flags_gpu_scheduling_needs() -> None:
    notes = render_notes(sets=KNATIVE)
    assert "kubernetes.podspec-nodeselector" in notes and "kubernetes.podspec-tolerations" in notes
    flagged = render_notes(CHART / "ci" / "knative-values.yaml")
    assert "were left out" not in flagged


def test_startup_probe_guards_the_model_load_in_both_modes() -> None:
    """Knative admits startupProbe from knative-v1.15.0 (fieldmask.go ContainerMask gains
    `out.StartupProbe = in.StartupProbe` there; knative-v1.14.0 has no such line)."""
    for sets in ([], KNATIVE):
        container = predictor_container(isvc(render(sets=sets), "image"))
        assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert "initialDelaySeconds" not in container["livenessProbe"]


@pytest.mark.parametrize(("image_bytes", "images"), [(10485760, 8), (52428800, 1), (1048576, 64)])
def test_ingress_lets_through_every_body_the_gateway_accepts(image_bytes: int, images: int) -> None:
    """Multipart framing and base64 JSON make a request bigger than its image: nginx must not answer 413
    for a body the gateway itself accepts (gateway/inputs.py computes the gateway's cap)."""
    objects = render(
        CHART / "ci" / "ingress-tls-values.yaml",
        sets=[f"gateway.maxImageBytes={image_bytes}", f"gateway.maxImages={images}"],
    )
    size = one(objects, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    mib = int(re.fullmatch(r"(\d+)m", size).group(1))  # type: ignore[union-attr]
    gateway = Limits(image_bytes, 40_000_000, 32, 2000, images).body_limit(image=True, text=True)
    assert mib * 2**20 >= gateway + 2**20 and mib <= math.ceil(gateway / 2**20) + 1
    own = render(
        CHART / "ci" / "ingress-tls-values.yaml",
        sets=["ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-body-size=64m"],
    )
    assert (
        one(own, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
    )


def test_the_predictor_url_states_its_service_assumption() -> None:
    values = (CHART / "values.yaml").read_text()
    assert "non-headless Service" in values and "non-headless" in (CHART / "README.md").read_text()


def test_kind_up_installs_the_kserve_chart_its_release_publishes() -> None:
    """Item 5: KServe publishes its controller chart as kserve-resources from v0.17."""
    up = (ROOT / "scripts" / "kind-up.sh").read_text()
    assert re.search(r"KSERVE_VERSION=\$\{KSERVE_VERSION:-v0\.(1[7-9]|2\d)\.\d+\}", up)
    assert "kserve_chart=kserve-resources" in up and '"$KSERVE_CHARTS/$kserve_chart"' in up
    assert "cannot run on the project's development machines" in up


def test_compose_header_matches_its_one_deploy_block() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    header = text.split("\n\n", 1)[0]
    assert text.count("\n  deploy:") == 1 and "two `deploy:`" not in header
    assert "`deploy:` block of `x-predictor`" in header


@pytest.mark.parametrize("variant", ["defaults", "text-on-cpu", "knative", "cpu"])
def test_the_predictor_reads_what_the_chart_renders(
    variants: dict[str, Objects], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered args and CLIP_* env, through the predictors' own settings parser."""
    from predictors.settings import read_settings

    for key in ("image", "text"):
        container = predictor_container(isvc(variants[variant], key))
        env = env_of(container)
        for name, value in env.items():
            if name.startswith("CLIP_"):
                monkeypatch.setenv(name, value)
        settings = read_settings(key, container["args"][2:])
        assert settings.device == env["CLIP_DEVICE"]
        assert settings.max_queue_items == int(env["CLIP_MAX_QUEUE_ITEMS"])
        assert settings.shutdown_grace_s == int(env["CLIP_SHUTDOWN_GRACE_S"])
        assert (settings.http_port, settings.grpc_port) == (8080, 8081)
        if "CLIP_STALL_TIMEOUT_S" in env:
            assert settings.stall_timeout_s == float(env["CLIP_STALL_TIMEOUT_S"])
