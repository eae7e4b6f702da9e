"""Every way of installing the chart against KServe's and Knative's admission webhooks.

The rules are transcribed in tests/deploy/admission.py with the source function of each; these tests
render the chart in each mode and autoscaler class and check what the webhooks would say.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.admission import KSERVE_VERSIONS, knative_errors, kserve_errors
from tests.deploy.chart import CHART, Objects, by_kind, helm_template, isvc, predictor_container, render

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests render the chart with helm

KEDA = ["kserve.autoscalerClass=keda", "predictor.autoscaling.keda.serverAddress=http://prom.monitoring:9090"]
KNATIVE = ["kserve.deploymentMode=Knative"]
ALL_FLAGS = (
    'kserve.knativeFeatureFlags=["kubernetes.podspec-nodeselector", "kubernetes.podspec-tolerations", '
    '"kubernetes.podspec-affinity", "kubernetes.podspec-securitycontext"]'
)
INSTALLS = {
    "standard-hpa-cpu": [],
    "standard-hpa-memory": [
        "predictor.autoscaling.scaleMetric=memory",
        "predictor.autoscaling.scaleTarget=80",
    ],
    "standard-keda-queued-items": KEDA,
    "standard-keda-cpu": [*KEDA, "predictor.autoscaling.scaleMetric=cpu"],
    "standard-external": ["kserve.autoscalerClass=external"],
    "standard-none": ["kserve.autoscalerClass=none"],
    "knative-concurrency": KNATIVE,
    "knative-rps": [
        *KNATIVE,
        "predictor.autoscaling.scaleMetric=rps",
        "predictor.autoscaling.scaleTarget=20",
    ],
    "knative-all-flags": [*KNATIVE, ALL_FLAGS, 'predictor.affinity={"nodeAffinity": {}}'],
    "text-on-cpu-knative": [*KNATIVE, "predictors.text.gpu.enabled=false"],
}


def flags_of(sets: list[str]) -> set[str]:
    return set(yaml.safe_load(ALL_FLAGS.partition("=")[2])) if ALL_FLAGS in sets else set()


def services(objects: Objects) -> list[dict[str, Any]]:
    found = by_kind(objects, "InferenceService")
    assert len(found) == 2
    return found


def admission_errors(service: dict[str, Any], version: tuple[int, int], flags: set[str]) -> list[str]:
    errors = kserve_errors(service, version)
    if service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in ("Knative", "Serverless"):
        errors += knative_errors(service, flags)
    return errors


@pytest.mark.parametrize("install", INSTALLS)
@pytest.mark.parametrize("legacy", [False, True], ids=["kserve-0.16+", "kserve-0.15"])
def test_every_install_is_admitted_by_the_kserve_it_is_for(install: str, legacy: bool) -> None:
    """Each mode and autoscaler class through KServe's validateAutoScalingCompExtension (and, in Knative
    mode, Knative's PodSpecMask / ContainerMask / port checks), on the KServe releases each name set is
    for."""
    sets = [*INSTALLS[install], f"kserve.legacyDeploymentModeNames={str(legacy).lower()}"]
    versions = [(0, 15), (0, 17), (0, 20)] if legacy else [(0, 16), (0, 17), (0, 20)]
    for service in services(render(sets=sets)):
        for version in versions:
            assert admission_errors(service, version, flags_of(sets)) == [], (install, version)


def test_every_ci_variant_is_admitted(variants: dict[str, Objects]) -> None:
    """The shipped variants, with the Knative flags each declares, on KServe 0.16 and 0.20."""
    for name, objects in variants.items():
        values = (
            yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) if name != "defaults" else {}
        )
        flags = set(values.get("kserve", {}).get("knativeFeatureFlags", []))
        for service in services(objects):
            for version in ((0, 16), (0, 20)):
                assert admission_errors(service, version, flags) == [], (name, version)


def test_mode_names_match_the_kserve_version() -> None:
    """Item 4: KServe 0.15 knows only RawDeployment/Serverless; 0.16's webhook reads RawDeployment as a
    Knative mode (no defaulter rewrite before 0.17), so each name set is admitted only where it belongs."""
    modern = isvc(render(), "image")
    legacy = isvc(render(sets=["kserve.legacyDeploymentModeNames=true"]), "image")
    assert modern["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert legacy["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    knative = isvc(render(sets=[*KNATIVE, "kserve.legacyDeploymentModeNames=true"]), "image")
    assert knative["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert kserve_errors(modern, (0, 15)) and kserve_errors(legacy, (0, 16))
    assert not kserve_errors(modern, (0, 16)) and not kserve_errors(legacy, (0, 15))
    assert (0, 15) in KSERVE_VERSIONS
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["clip-similarity/kserve-versions"] == ">=0.15.2 <=0.20"


def test_knative_pods_carry_no_field_knative_refuses() -> None:
    """Item 1: Knative's PodSpecMask never admits terminationGracePeriodSeconds, and admits securityContext,
    nodeSelector and tolerations only with their feature flags: they are left out, and what can move goes
    on the container (SecurityContextMask admits runAsUser, runAsGroup, runAsNonRoot, seccompProfile)."""
    for key in ("image", "text"):
        spec = isvc(render(sets=KNATIVE), key)["spec"]["predictor"]
        assert not {"terminationGracePeriodSeconds", "securityContext", "nodeSelector", "tolerations"} & set(
            spec
        )
        sc = predictor_container({"spec": {"predictor": spec}})["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (10001, 10001, True)
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # With the flags on, the GPU scheduling fields and the pod securityContext come back.
    spec = isvc(render(sets=[*KNATIVE, ALL_FLAGS]), "image")["spec"]["predictor"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["securityContext"]["fsGroup"] == 10001


@pytest.mark.parametrize(
    ("setting", "flag"),
    [
        ('predictor.nodeSelector={"pool": "gpu"}', "kubernetes.podspec-nodeselector"),
        ('predictor.tolerations=[{"key": "k", "operator": "Exists"}]', "kubernetes.podspec-tolerations"),
        ('predictor.affinity={"nodeAffinity": {}}', "kubernetes.podspec-affinity"),
    ],
)
def test_knative_refuses_explicit_placement_without_its_flag_at_render(setting: str, flag: str) -> None:
    result = helm_template(sets=[*KNATIVE, setting])
    assert result.returncode != 0 and flag in result.stderr and "knativeFeatureFlags" in result.stderr


@pytest.mark.parametrize(
    ("sets", "allowed"),
    [
        ([*KNATIVE, "predictor.autoscaling.scaleMetric=cpu"], "concurrency, rps"),
        (["predictor.autoscaling.scaleMetric=queuedItems"], "cpu, memory"),
        ([*KEDA, "predictor.autoscaling.scaleMetric=memory"], "queuedItems, cpu"),
    ],
)
def test_a_metric_the_mode_cannot_use_fails_the_render_clearly(sets: list[str], allowed: str) -> None:
    """Item 2: KServe's KPA check admits only concurrency and rps; its HPA check cpu and memory."""
    result = helm_template(sets=sets)
    assert result.returncode != 0 and f"admits only {allowed}" in result.stderr, result.stderr


def test_each_mode_scales_on_its_own_signal_by_default() -> None:
    """Items 2 and 3: concurrency in Knative, cpu with the HPA, no scaleMetric with KEDA, none/external."""
    knative = isvc(render(sets=KNATIVE), "image")["spec"]["predictor"]
    assert (knative["scaleMetric"], knative["scaleTarget"]) == ("concurrency", 32)  # one full batch a pod
    hpa = isvc(render(), "image")["spec"]["predictor"]
    assert (hpa["scaleMetric"], hpa["scaleTarget"]) == ("cpu", 70)
    for sets in (KEDA, ["kserve.autoscalerClass=none"], ["kserve.autoscalerClass=external"]):
        spec = isvc(render(sets=sets), "text")["spec"]["predictor"]
        assert "scaleMetric" not in spec and "scaleTarget" not in spec, sets


def test_keda_scales_each_predictor_on_the_items_its_pods_hold(tmp_path: Path) -> None:
    """KServe's KEDA reconciler (reconcilers/keda/keda_reconciler.go getKedaMetrics) turns an External
    metric into a KEDA trigger of type `backend` (prometheus) with serverAddress, query and threshold =
    target.value; validateScalingKedaCompExtension wants a query and a target value. KEDA's default
    AverageValue metric type divides the query's sum by the replicas, so the target is items a pod."""
    from predictors.metrics import QUEUED_ITEMS
    from tests.deploy.chart import run, tool

    objects = render(sets=[*KEDA, "predictors.text.scaleTarget=100"])
    queries = []
    for key, target in (("image", "32"), ("text", "100")):
        service = isvc(objects, key)
        (metric,) = service["spec"]["predictor"]["autoScaling"]["metrics"]
        assert metric["type"] == "External"
        external = metric["external"]
        assert external["target"] == {"type": "Value", "value": target}
        assert external["metric"]["backend"] == "prometheus"
        assert external["metric"]["serverAddress"] == "http://prom.monitoring:9090"
        query = external["metric"]["query"]
        # The gauge the predictors export, over this predictor's pods only (<isvc>-predictor-…).
        assert QUEUED_ITEMS._name == "clip_queued_items" and "clip_queued_items{" in query
        assert f'pod=~"{service["metadata"]["name"]}-predictor-.+"' in query and 'namespace="ml"' in query
        queries.append(query)
    rules = [{"record": f"keda:query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "keda.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "keda", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    # Without a Prometheus to ask, the install fails with what to set.
    result = helm_template(sets=["kserve.autoscalerClass=keda"])
    assert result.returncode != 0 and "keda.serverAddress" in result.stderr


def test_the_checks_refuse_what_the_chart_used_to_render() -> None:
    """The transcribed rules catch each defect of the old chart: a test that passes proves something."""
    knative = isvc(render(sets=KNATIVE), "image")
    old = copy.deepcopy(knative)
    old["spec"]["predictor"]["terminationGracePeriodSeconds"] = 30
    old["spec"]["predictor"]["securityContext"] = {"runAsNonRoot": True}
    old["spec"]["predictor"]["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    assert len(knative_errors(old, set())) == 3
    old = copy.deepcopy(knative)
    old["spec"]["predictor"]["scaleMetric"] = "cpu"
    assert "[cpu] is not a supported metric" in kserve_errors(old, (0, 20))
    keda = isvc(render(sets=KEDA), "image")
    keda["spec"]["predictor"]["scaleMetric"] = "cpu"
    assert "ScaleMetric is not supported for KEDA" in kserve_errors(keda, (0, 20))
    standard = isvc(render(), "image")
    assert kserve_errors(standard, (0, 15))  # "Standard" unknown to 0.15: Knative rules refuse cpu
    knative["spec"]["predictor"]["deploymentStrategy"] = {"type": "Recreate"}
    assert "customizing deploymentStrategy is only supported for raw deployment mode" in kserve_errors(
        knative, (0, 20)
    )
