"""Check rendered objects against the API models of Kubernetes, KServe and the Prometheus Operator."""

from __future__ import annotations

import re
from typing import Any

import kserve.models as kserve_models
import kubernetes.client.models as k8s_models
from cloudcoil.models.prometheus_operator import v1 as prom_v1
from kubernetes_validate import utils as kv
from pydantic import BaseModel

LIST = re.compile(r"^(?:list|List)\[(.+)\]$")
DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
}
PROMETHEUS_OPERATOR: dict[str, type[BaseModel]] = {
    "ServiceMonitor": prom_v1.ServiceMonitor,
    "PodMonitor": prom_v1.PodMonitor,
    "PrometheusRule": prom_v1.PrometheusRule,
}


# KServe's models name some Kubernetes types by Go package (K8sIoApiAppsV1DeploymentStrategy is the
# kubernetes client's V1DeploymentStrategy); MetricQuantity is a quantity: an int-or-string leaf.
K8S_GO_NAME = re.compile(r"^K8sIoApi[A-Z][a-z]+(V\d+(?:[a-z]+\d+)?)([A-Z]\w+)$")
QUANTITY_LEAVES = {"V1beta1MetricQuantity", "ResourceQuantity"}


def _model(type_name: str) -> Any:
    if type_name in QUANTITY_LEAVES:
        return str  # no openapi_types: checked as a leaf
    if m := K8S_GO_NAME.match(type_name):
        type_name = m.group(1) + m.group(2)
    return getattr(kserve_models, type_name, None) or getattr(k8s_models, type_name, None)


def openapi_errors(value: Any, type_name: str, path: str = "") -> list[str]:
    """Fields of `value` unknown to, or of the wrong type for, the OpenAPI model `type_name`."""
    if m := LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        return [e for i, item in enumerate(value) for e in openapi_errors(item, m.group(1), f"{path}[{i}]")]
    if m := DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {value!r}"]
        inner = m.group(1) or m.group(2)
        return [e for k, v in value.items() for e in openapi_errors(v, inner, f"{path}.{k}")]
    if type_name in SCALARS:
        ok = isinstance(value, SCALARS[type_name]) and not (type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{path}: expected {type_name}, got {value!r}"]
    model = _model(type_name)
    if model is None:
        return [f"{path}: no model named {type_name}"]
    if not hasattr(model, "openapi_types"):  # e.g. a quantity: an int-or-string leaf
        return (
            [] if isinstance(value, str | int | float) else [f"{path}: expected a {type_name}, got {value!r}"]
        )
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object, got {value!r}"]
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    errors = []
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: unknown field of {type_name}")
        else:
            errors += openapi_errors(item, model.openapi_types[by_json[key]], f"{path}.{key}")
    return errors


def inference_service_errors(obj: dict[str, Any]) -> list[str]:
    return openapi_errors(obj, "V1beta1InferenceService", obj["metadata"]["name"])


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def prometheus_operator_errors(obj: dict[str, Any]) -> list[str]:
    """Validation errors, plus fields the model drops (unknown fields) found by a round trip."""
    model = PROMETHEUS_OPERATOR[obj["kind"]]
    try:
        parsed = model.model_validate(obj)
    except ValueError as e:
        return [str(e)]
    back = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    return (
        [] if _normalise(back) == _normalise(obj) else [f"round trip changed the object:\n{back}\n!=\n{obj}"]
    )


def kubernetes_errors(obj: dict[str, Any]) -> list[str]:
    """Strict validation against the newest Kubernetes schema kubernetes-validate ships."""
    try:
        kv.validate(obj, kv.latest_version(), strict=True)
    except kv.ValidationError as e:
        return [f"{obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}"]
    return []


def is_builtin(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")
