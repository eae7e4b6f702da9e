"""Monitoring tables: the metrics each program registers and the alerts the chart renders."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from .common import DocsError, code, table

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "clip-similarity"


def metric_objects(found: list[Any], where: str) -> list[Any]:
    from prometheus_client.metrics import MetricWrapperBase

    metrics = [m for m in found if isinstance(m, MetricWrapperBase)]
    if not metrics:
        raise DocsError(f"no prometheus_client metric found in {where}")
    return metrics


def in_module(module: ModuleType) -> list[Any]:
    return metric_objects(list(vars(module).values()), module.__name__)


def rows(metrics: list[Any]) -> list[tuple[str, str, str, str]]:
    # `_name`, `_type`, `_labelnames`, `_documentation`: prometheus-client's metric attributes (checked
    # against 0.26.0), the only way to read an unobserved metric's labels. A counter's `_name` lacks `_total`.
    out = []
    for m in metrics:
        name = m._name + ("_total" if m._type == "counter" else "")
        labels = ", ".join(code(label) for label in m._labelnames) or "—"
        out.append((code(name), m._type, labels, m._documentation))
    return out


def gateway_metrics() -> str:
    """The metrics of `gateway.metrics.Metrics` (one registry per app)."""
    module = importlib.import_module("gateway.metrics")
    cls = getattr(module, "Metrics", None)
    if not isinstance(cls, type):
        raise DocsError("gateway.metrics.Metrics (the class that registers the gateway's metrics) is gone")
    metrics = metric_objects(list(vars(cls()).values()), "gateway.metrics.Metrics()")
    return table(("metric", "type", "labels", "meaning"), rows(metrics))


def predictor_metrics() -> str:
    """The predictors' own metrics, then KServe's per-step histograms, both on KServe's `/metrics`."""
    ours = in_module(importlib.import_module("predictors.metrics"))
    kserve = in_module(importlib.import_module("kserve.metrics"))
    described = [(*r, "the predictors") for r in rows(ours)] + [(*r, "KServe") for r in rows(kserve)]
    return table(("metric", "type", "labels", "meaning", "from"), described)


def helm() -> str:
    for candidate in (ROOT / ".tools" / "bin" / "helm", shutil.which("helm")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise DocsError("helm not found in .tools/bin or on PATH: run `make tools`")


def rendered_rules() -> list[dict[str, Any]]:
    """The alerting rules of the chart's PrometheusRule, rendered with the default values."""
    argv = [helm(), "template", "clip-similarity", str(CHART), "--api-versions", "monitoring.coreos.com/v1"]
    argv += ["--show-only", "templates/prometheusrule.yaml"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise DocsError(f"helm template failed: {result.stderr.strip()}")
    rule = yaml.safe_load(result.stdout)
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def thresholds(expr: str) -> str:
    """The constants the expression compares against, in order (`> 0.05`, `== 0`)."""
    found = re.findall(r"(>=|<=|==|!=|>|<)\s*([0-9][0-9.e+-]*)\b", expr)
    return ", ".join(code(f"{op} {value}") for op, value in found) or "—"


def alerts() -> str:
    """Every alert: severity, how long its condition must hold, the comparisons, and its summary."""
    rules = rendered_rules()
    return table(
        ("alert", "severity", "for", "compares", "summary"),
        [
            (
                f"[{r['alert']}](../helm/clip-similarity/README.md#{r['alert'].lower()})",
                r.get("labels", {}).get("severity", "—"),
                r.get("for", "—"),
                thresholds(r["expr"]),
                r.get("annotations", {}).get("summary", "—"),
            )
            for r in rules
        ],
    )
