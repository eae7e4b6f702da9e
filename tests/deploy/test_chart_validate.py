"""Every rendered object against its API: Kubernetes (strict), KServe's models, the Prometheus Operator's."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.chart import Objects
from tests.deploy.schemas import (
    PROMETHEUS_OPERATOR,
    inference_service_errors,
    is_builtin,
    kubernetes_errors,
    prometheus_operator_errors,
)


def errors_of(obj: dict) -> list[str]:
    if obj["kind"] == "InferenceService":
        return inference_service_errors(obj)
    if obj["kind"] in PROMETHEUS_OPERATOR:
        return prometheus_operator_errors(obj)
    assert is_builtin(obj), f"no validator for {obj['apiVersion']} {obj['kind']}"
    return kubernetes_errors(obj)


def test_every_variant_renders_what_it_should(variants: dict[str, Objects]) -> None:
    assert set(variants) == {
        "defaults",
        "cpu",
        "no-monitoring",
        "knative",
        "ingress-tls",
        "keda",
        "text-on-cpu",
    }
    for name, objects in variants.items():
        kinds = {o["kind"] for o in objects}
        assert {"InferenceService", "Deployment", "Service", "NetworkPolicy", "Pod"} <= kinds, name


def test_every_object_of_every_variant_is_valid(variants: dict[str, Objects]) -> None:
    problems = [f"{name}: {e}" for name, objects in variants.items() for o in objects for e in errors_of(o)]
    assert problems == []


def test_validators_refuse_unknown_fields_and_wrong_types(variants: dict[str, Objects]) -> None:
    objects = variants["defaults"]
    broken = {}
    for kind in ("InferenceService", "Deployment", "PodMonitor", "ServiceMonitor", "PrometheusRule"):
        obj = copy.deepcopy(next(o for o in objects if o["kind"] == kind))
        obj["spec"]["surprise"] = True
        broken[kind] = errors_of(obj)
    isvc = copy.deepcopy(next(o for o in objects if o["kind"] == "InferenceService"))
    isvc["spec"]["predictor"]["containers"][0]["resources"]["limits"] = ["nvidia.com/gpu"]
    broken["InferenceService limits"] = errors_of(isvc)
    assert all(broken.values()), {k: v for k, v in broken.items() if not v}


@pytest.mark.parametrize("mode", ["defaults", "knative", "keda", "text-on-cpu"])
def test_inference_service_uses_only_kserve_fields(variants: dict[str, Objects], mode: str) -> None:
    services = [o for o in variants[mode] if o["kind"] == "InferenceService"]
    assert len(services) == 2
    assert [inference_service_errors(s) for s in services] == [[], []]
