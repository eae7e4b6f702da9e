"""What the rendered chart means for a user: GPUs, predictor URLs, probes, security, selectors, monitoring."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.chart import (
    CHART,
    NAMESPACE,
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
)

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs

GPU = "nvidia.com/gpu"


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pod_specs(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    specs = [
        (f"Deployment/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in by_kind(objects, "Deployment")
    ]
    specs += [(f"Pod/{p['metadata']['name']}", p["spec"]) for p in by_kind(objects, "Pod")]
    specs += [
        (f"InferenceService/{s['metadata']['name']}", s["spec"]["predictor"])
        for s in by_kind(objects, "InferenceService")
    ]
    return specs


def test_predictors_ask_for_a_gpu_by_default(variants: dict[str, Objects]) -> None:
    for key in ("image", "text"):
        spec = isvc(variants["defaults"], key)["spec"]["predictor"]
        assert predictor_container(isvc(variants["defaults"], key))["resources"]["limits"][GPU] == "1"
        assert env_of(predictor_container(isvc(variants["defaults"], key)))["CLIP_DEVICE"] == "cuda"
        assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]


def test_cpu_variant_asks_for_no_gpu(variants: dict[str, Objects]) -> None:
    for key in ("image", "text"):
        service = isvc(variants["cpu"], key)
        container = predictor_container(service)
        assert GPU not in json.dumps(service)
        assert env_of(container)["CLIP_DEVICE"] == "cpu"
        assert "nodeSelector" not in service["spec"]["predictor"]


@pytest.mark.parametrize("mode", ["defaults", "knative"])
def test_gateway_calls_the_services_kserve_creates(variants: dict[str, Objects], mode: str) -> None:
    objects = variants[mode]
    env = gateway_env(objects)
    for key in ("image", "text"):
        service = isvc(objects, key)
        name = service["metadata"]["name"]
        # Standard: Service <isvc>-predictor (80 -> 8080); Knative: the route's cluster-local host (80).
        assert env[f"{key.upper()}_PREDICTOR_URL"] == f"http://{name}-predictor.{NAMESPACE}.svc.cluster.local"
        args = predictor_container(service)["args"]
        assert f"--model_name={env[f'{key.upper()}_MODEL_NAME']}" in args
        assert args[:2] == ["-m", f"predictors.{key}"]
        assert "--http_port=8080" in args


def test_predictor_urls_can_be_overridden() -> None:
    env = gateway_env(
        render(
            sets=[
                "gateway.imagePredictorUrl=http://img.other:9000",
                "predictors.text.name=words",
                "predictors.text.modelName=words-v2",
            ]
        )
    )
    assert env["IMAGE_PREDICTOR_URL"] == "http://img.other:9000"
    assert env["TEXT_PREDICTOR_URL"] == f"http://words-predictor.{NAMESPACE}.svc.cluster.local"
    assert env["TEXT_MODEL_NAME"] == "words-v2"


def test_deployment_modes(variants: dict[str, Objects]) -> None:
    standard = isvc(variants["defaults"], "image")
    knative = isvc(variants["knative"], "image")
    assert standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert knative["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    ports = {p["name"]: p["containerPort"] for p in predictor_container(standard)["ports"]}
    assert ports == {"http": 8080, "grpc": 8081}
    # Knative serves one port per container, named for its protocol; startupProbe in both (Knative >= 1.15).
    assert [(p["name"], p["containerPort"]) for p in predictor_container(knative)["ports"]] == [
        ("http1", 8080)
    ]
    assert predictor_container(knative)["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert knative["spec"]["predictor"]["minReplicas"] == 0
    assert knative["spec"]["predictor"]["scaleMetric"] == "concurrency"


def test_predictor_probes_use_the_v2_health_routes(variants: dict[str, Objects]) -> None:
    for key, model in (("image", "clip-image"), ("text", "clip-text")):
        c = predictor_container(isvc(variants["defaults"], key))
        ports = {p["containerPort"] for p in c["ports"]}
        assert c["readinessProbe"]["httpGet"] == {"path": f"/v2/models/{model}/ready", "port": 8080}
        assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert {c[p]["httpGet"]["port"] for p in ("readinessProbe", "livenessProbe", "startupProbe")} <= ports


def test_gateway_probes_and_ports_line_up(variants: dict[str, Objects]) -> None:
    objects = variants["defaults"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert one(objects, "Service")["spec"]["ports"][0]["targetPort"] in port_names


@pytest.mark.parametrize(
    ("sets", "path"),
    [
        ([], "/readyz"),
        (["kserve.deploymentMode=Knative"], "/readyz"),  # minReplicas 1: nothing scales to zero
        (["kserve.deploymentMode=Knative", "predictors.text.minReplicas=0"], "/healthz"),
        (["predictors.image.minReplicas=0"], "/readyz"),  # Standard mode keeps one pod
    ],
)
def test_gateway_readiness_never_keeps_a_scaled_to_zero_predictor_awake(sets: list[str], path: str) -> None:
    # /readyz asks both predictors: Knative would count that probe as traffic and never scale to zero.
    container = one(render(sets=sets), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": path, "port": "http"}


def test_knative_variant_lets_its_predictors_sleep(variants: dict[str, Objects]) -> None:
    container = one(variants["knative"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("mode", ["defaults", "knative"])
def test_overload_bounds_and_text_cache_reach_the_containers(variants: dict[str, Objects], mode: str) -> None:
    for key in ("image", "text"):
        assert env_of(predictor_container(isvc(variants[mode], key)))["CLIP_MAX_QUEUE_ITEMS"] == "256"
    env = gateway_env(variants[mode])
    assert (env["GATEWAY_MAX_CONCURRENCY"], env["GATEWAY_TEXT_CACHE_SIZE"]) == ("64", "4096")
    assert (env["GATEWAY_TEXT_BATCH_WAIT_MS"], env["GATEWAY_TEXT_BATCH_SIZE"]) == ("250", "32")


@pytest.mark.parametrize(
    ("sets", "in_flight"),
    [
        ([], "4"),  # 2 calls for each of the image predictor's (at most) 2 pods
        (["predictors.image.maxReplicas=5", "gateway.imageCallsPerPredictorPod=3"], "15"),
        (["gateway.imageCallsPerPredictorPod=0"], "0"),
        # Scaling on what the predictors hold: images waiting in the gateway would hide it.
        (["kserve.deploymentMode=Knative"], "0"),
        (["kserve.autoscalerClass=keda", "predictor.autoscaling.keda.serverAddress=http://prom:9090"], "0"),
    ],
)
def test_image_calls_in_flight_follow_the_image_predictor_pods(sets: list[str], in_flight: str) -> None:
    env = gateway_env(render(sets=[*sets, "gateway.imageBatchSize=24"]))
    assert (env["GATEWAY_IMAGE_CALLS_IN_FLIGHT"], env["GATEWAY_IMAGE_BATCH_SIZE"]) == (in_flight, "24")


def test_overload_bounds_and_text_cache_come_from_values() -> None:
    objects = render(
        sets=[
            "predictors.image.maxQueueItems=1000000",  # a plain integer in the env, never 1e+06
            "predictors.text.maxQueueItems=512",
            "gateway.maxConcurrency=8",
            "gateway.textCacheSize=0",  # cache off
            "gateway.textBatchWaitMs=0",  # each request's texts alone
            "gateway.textBatchSize=64",
        ]
    )
    assert env_of(predictor_container(isvc(objects, "image")))["CLIP_MAX_QUEUE_ITEMS"] == "1000000"
    assert env_of(predictor_container(isvc(objects, "text")))["CLIP_MAX_QUEUE_ITEMS"] == "512"
    env = gateway_env(objects)
    assert (env["GATEWAY_MAX_CONCURRENCY"], env["GATEWAY_TEXT_CACHE_SIZE"]) == ("8", "0")
    assert (env["GATEWAY_TEXT_BATCH_WAIT_MS"], env["GATEWAY_TEXT_BATCH_SIZE"]) == ("0", "64")


@pytest.mark.parametrize(
    "setting",
    [
        "predictors.text.maxQueueItems=16",  # under --max_items (64): the predictor would refuse to start
        "gateway.maxConcurrency=0",
        "gateway.textCacheSize=-1",
        "gateway.preStopSleepSeconds=-5",
    ],
)
def test_impossible_bounds_are_refused_at_install(setting: str) -> None:
    result = helm_template(sets=[setting])
    field = setting.partition("=")[0].rpartition(".")[2]
    assert result.returncode != 0 and field in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("sets", "pre_stop"),
    [
        ([], 5),
        (["gateway.predictorTimeoutSeconds=2.5"], 5),
        (["gateway.preStopSleepSeconds=20", "gateway.predictorTimeoutSeconds=120"], 20),
        (["gateway.preStopSleepSeconds=0"], 0),
    ],
)
def test_gateway_pods_outlive_their_pre_stop_and_drain(sets: list[str], pre_stop: int) -> None:
    objects = render(sets=sets)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if pre_stop:
        assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", str(pre_stop)]}}}
    else:
        assert "lifecycle" not in container
    # Kubernetes counts the grace period from the start of preStop; SIGTERM follows it, and the gateway
    # then drains in-flight requests for up to PREDICTOR_TIMEOUT_S + 5 s. SIGKILL must come after both.
    drain = float(gateway_env(objects)["PREDICTOR_TIMEOUT_S"]) + 5
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_gateway_pre_stop_works_on_every_supported_kubernetes_and_image() -> None:
    from kubernetes_validate import utils as kv

    deployment = one(render(), "Deployment")
    # An exec of `sleep`, valid from the oldest Kubernetes the README supports (1.27); the native
    # `lifecycle.preStop.sleep` handler is unknown there (and off by default before 1.30).
    kv.validate(deployment, "1.27.0", strict=True)
    native = json.loads(json.dumps(deployment))
    native["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"] = {"sleep": {"seconds": 5}}
    with pytest.raises(kv.ValidationError):
        kv.validate(native, "1.27.0", strict=True)
    assert "Kubernetes 1.27+" in (CHART / "README.md").read_text()
    # The gateway image runs on a Debian python slim base, whose coreutils provide /bin/sleep.
    dockerfile = (ROOT / "Dockerfile.gateway").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in dockerfile
    assert dockerfile.rsplit("\nFROM ", 1)[1].startswith("${PYTHON_IMAGE}")


def test_every_pod_meets_the_restricted_pod_security_standard(variants: dict[str, Objects]) -> None:
    # A container's own settings win over the pod's; Knative mode carries them on the container only.
    for name, objects in variants.items():
        for where, spec in pod_specs(objects):
            for c in spec["containers"]:
                sc = {**spec.get("securityContext", {}), **c["securityContext"]}
                assert sc["runAsNonRoot"] is True, (name, where)
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, (name, where)
                assert sc["allowPrivilegeEscalation"] is False, (name, where)
                assert sc["capabilities"]["drop"] == ["ALL"], (name, where)
                assert sc["readOnlyRootFilesystem"] is True, (name, where)
                assert "add" not in sc["capabilities"] and not sc.get("privileged"), (name, where)
            assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), (name, where)


def test_read_only_predictors_get_writable_caches(variants: dict[str, Objects]) -> None:
    for key in ("image", "text"):
        service = isvc(variants["defaults"], key)
        container = predictor_container(service)
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in service["spec"]["predictor"]["volumes"]}
        assert set(mounts) == {"/cache", "/tmp"}
        assert all("emptyDir" in volumes[n] for n in mounts.values())
        assert env_of(container)["HF_HOME"].startswith("/cache/")


def test_storage_uri_serves_the_downloaded_model_directory() -> None:
    uri = "s3://models/clip-vit-b-32"
    env = env_of(predictor_container(isvc(render(sets=[f"predictor.model.storageUri={uri}"]), "image")))
    assert env["STORAGE_URI"] == uri
    assert env["CLIP_MODEL_DIR"] == "/mnt/models"
    assert "CLIP_ARCH" not in env and "CLIP_PRETRAINED" not in env


def test_selectors_pick_the_right_pods(variants: dict[str, Objects]) -> None:
    objects = variants["ingress-tls"]
    deployment = one(objects, "Deployment")
    gateway_labels = deployment["spec"]["template"]["metadata"]["labels"]
    predictor_labels = [isvc(objects, k)["spec"]["predictor"]["labels"] for k in ("image", "text")]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        one(objects, "Service")["spec"]["selector"],
        one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert matches(selector, gateway_labels)
        assert not any(matches(selector, labels) for labels in predictor_labels)
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]


def test_network_policy_admits_only_the_gateway_and_prometheus(variants: dict[str, Objects]) -> None:
    objects = variants["defaults"]
    policy = one(objects, "NetworkPolicy")["spec"]
    names = sorted(isvc(objects, k)["metadata"]["name"] for k in ("image", "text"))
    # KServe labels every predictor pod serving.kserve.io/inferenceservice=<name>.
    assert policy["podSelector"]["matchExpressions"] == [
        {"key": "serving.kserve.io/inferenceservice", "operator": "In", "values": names}
    ]
    gateway_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    peers = [rule["from"] for rule in policy["ingress"]]
    assert len(peers) == 2
    assert matches(peers[0][0]["podSelector"]["matchLabels"], gateway_labels)
    assert peers[1][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert {p["port"] for p in policy["ingress"][1]["ports"]} == {8080}
    knative_peers = one(variants["knative"], "NetworkPolicy")["spec"]["ingress"]
    assert any("knative-serving" in json.dumps(rule) for rule in knative_peers)


def test_ingress_routes_the_gateway_with_tls(variants: dict[str, Objects]) -> None:
    objects = variants["ingress-tls"]
    ingress = one(objects, "Ingress")["spec"]
    service = one(objects, "Service")
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "clip-example-com-tls", "hosts": ["clip.example.com"]}]
    paths = ingress["rules"][0]["http"]["paths"]
    assert "/compare/" in {p["path"] for p in paths}
    backends = {(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"]) for p in paths}
    assert backends == {(service["metadata"]["name"], service["spec"]["ports"][0]["port"])}
    assert not by_kind(variants["defaults"], "Ingress")


def test_api_keys_come_from_a_secret(variants: dict[str, Objects]) -> None:
    objects = variants["ingress-tls"]
    secret = one(objects, "Secret")
    ref = gateway_env(objects)["GATEWAY_API_KEYS"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "api-keys"}
    assert env_of(one(objects, "Pod")["spec"]["containers"][0])["GATEWAY_API_KEYS"]["secretKeyRef"] == ref
    assert "GATEWAY_API_KEYS" not in gateway_env(variants["defaults"])
    assert not by_kind(variants["defaults"], "Secret")
    existing = render(sets=["gateway.apiKeys.existingSecret=team-keys"])
    assert gateway_env(existing)["GATEWAY_API_KEYS"]["secretKeyRef"]["name"] == "team-keys"
    assert not by_kind(existing, "Secret")


def test_helm_test_posts_to_the_gateway_service(variants: dict[str, Objects]) -> None:
    objects = variants["defaults"]
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    service = one(objects, "Service")
    url = env_of(pod["spec"]["containers"][0])["GATEWAY_URL"]
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    script = pod["spec"]["containers"][0]["args"][0]
    assert '"/compare/"' in script and "probabilities" in script


def test_monitoring_objects_follow_their_flags_and_the_cluster(variants: dict[str, Objects]) -> None:
    operator_kinds = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert operator_kinds <= {o["kind"] for o in variants["defaults"]}
    assert not operator_kinds & {o["kind"] for o in variants["no-monitoring"]}
    # A cluster without the Prometheus Operator: nothing that would break `helm install`...
    assert not operator_kinds & {o["kind"] for o in render(monitoring_api=False)}
    # ...unless forced.
    forced = render(sets=["monitoring.forceApiVersions=true"], monitoring_api=False)
    assert operator_kinds <= {o["kind"] for o in forced}
    assert not any(o["kind"] == "ConfigMap" for o in render(sets=["monitoring.dashboard.enabled=false"]))


def test_monitoring_targets_and_job_labels(variants: dict[str, Objects]) -> None:
    objects = variants["ingress-tls"]
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert {"action": "replace", "targetLabel": "job", "replacement": "clip-gateway"} in endpoint[
        "relabelings"
    ]
    for key in ("image", "text"):
        name = isvc(objects, key)["metadata"]["name"]
        pm = next(p for p in by_kind(objects, "PodMonitor") if p["metadata"]["name"] == name)
        assert pm["spec"]["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": name}
        relabel = pm["spec"]["podMetricsEndpoints"][0]["relabelings"]
        assert relabel[-1] == {"action": "replace", "targetLabel": "job", "replacement": f"clip-{key}"}
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for obj in by_kind(objects, kind):
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboard_configmap_carries_the_dashboard(variants: dict[str, Objects]) -> None:
    cm = next(o for o in variants["defaults"] if o["kind"] == "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(cm["data"]["clip-similarity.json"])
    assert shipped == json.loads((CHART / "dashboards" / "clip-similarity.json").read_text())
    relabelled = render(sets=["monitoring.dashboard.label=grafana", "monitoring.dashboard.labelValue=clip"])
    assert next(o for o in relabelled if o["kind"] == "ConfigMap")["metadata"]["labels"]["grafana"] == "clip"
