"""Alerts that fire and resolve, and a dashboard that shows data: the real programs under a real Prometheus.

The chart's own alert rules (rendered by helm with `for: 2s` and a 10 s rate window instead of minutes), the
shipped prometheus/prometheus.yml (1 s scrape and evaluation), a tiny model, and steady /compare/ traffic.
Then an outage as the person on call lives it: the text predictor stops while users keep comparing, the
5xx-ratio and target-down alerts fire; it comes back on the same port, both resolve. Finally every panel
of the Grafana dashboard, queried as Grafana would, has data (the GPU panels aside: no DCGM exporter here).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.chart import one, render, tool
from tests.deploy.test_dashboard import DASHBOARD, GRAFANA_VARS, panels
from tests.support.prometheus import Prometheus, local_config, poll, start_prometheus
from tests.support.stack import JOBS, LocalStack
from tests.support.tiers import process_fixture
from tests.support.traffic import Traffic

ALERTS = "monitoring.prometheusRule.alerts"
RULE_SETTINGS = [
    "monitoring.prometheusRule.rateWindow=10s",
    *(
        f"{ALERTS}.{alert}.for=2s"
        for alert in (
            "gatewayLatency",
            "gatewayErrors",
            "targetDown",
            "predictorOverloaded",
            "queueSaturated",
        )
    ),
    f"{ALERTS}.gatewayErrors.minRequestsPerSecond=0.5",  # the traffic below sends ~5-10 requests/s
]
ERROR_RATIO, TARGET_DOWN = "ClipGatewayHighErrorRatio", "ClipTargetDown"
OVERLOADED = "ClipPredictorOverloaded"
# Grafana's $__rate_interval with a 1 s scrape is 4 s at least; 15 s spans a few seconds of traffic.
RATE_INTERVAL = "15s"


@process_fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's PrometheusRule, rendered by helm with short durations, as a plain rule file."""
    spec = one(render(sets=RULE_SETTINGS), "PrometheusRule")["spec"]
    assert {r["for"] for g in spec["groups"] for r in g["rules"]} == {"2s"}
    path = tmp_path_factory.mktemp("rules") / "rules.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@process_fixture(scope="module")
def prometheus(
    local_stack: LocalStack, rules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    config = local_config(local_stack.http_ports(), rules, interval="1s")
    prom = start_prometheus(tool("prometheus"), config, tmp_path_factory.mktemp("prometheus"))
    try:
        yield prom
    finally:
        prom.server.stop()


@pytest.fixture(scope="module")
def traffic(local_stack: LocalStack, prometheus: Prometheus) -> Iterator[Traffic]:
    with Traffic(local_stack.gateway_url) as load:
        yield load


@pytest.fixture(scope="module")
def incident(local_stack: LocalStack, traffic: Traffic) -> Iterator[float]:
    """The text predictor stops while traffic goes on; yields when the stop began. The shared stack is
    whole again afterwards."""
    poll(traffic.statuses, lambda s: s[200] >= 5, 60, "answering comparisons before the outage")
    began = time.monotonic()  # the outage starts with SIGTERM; a graceful stop takes a few seconds
    local_stack.stop("clip-text")
    try:
        yield began
    finally:
        text = local_stack.servers["clip-text"]
        if text.proc is not None and text.proc.poll() is not None:
            local_stack.restart("clip-text")


@pytest.fixture(scope="module")
def recovered(local_stack: LocalStack, incident: float) -> float:
    """The text predictor back on the same ports and ready; returns when."""
    local_stack.restart("clip-text")
    return time.monotonic()


def active(prometheus: Prometheus) -> dict[tuple[str, str], dict[str, Any]]:
    """(alertname, job) -> alert, for every pending or firing alert."""
    return {(a["labels"]["alertname"], a["labels"].get("job", "")): a for a in prometheus.alerts()}


def test_healthy_traffic_raises_no_error_or_target_alert(prometheus: Prometheus, traffic: Traffic) -> None:
    # Every target scraped and traffic over the alert's floor: the error-ratio rule evaluates real data.
    poll(prometheus.targets, lambda t: set(t) == set(JOBS) and set(t.values()) == {"up"}, 30, "all up")
    rate = 'sum(rate(http_requests_total{job="clip-gateway", handler="/compare/"}[10s])) > 0.5'
    poll(lambda: prometheus.query(rate), bool, 30, "over the traffic floor")
    # Several evaluation cycles (1 s each) of healthy traffic: nothing pending, nothing firing.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        alerts = active(prometheus)
        assert not {name for name, _ in alerts} & {ERROR_RATIO, TARGET_DOWN, OVERLOADED}, alerts
        time.sleep(0.5)
    assert traffic.statuses()[200] > 0 and set(traffic.statuses()) == {200}, traffic.statuses()
    # The dashboard says "0 % errors", not "No data", while nothing fails.
    assert series_values(prometheus, panel_query("5xx ratio")) == {"": 0.0}
    # Likewise "0 rejected" while nothing is overloaded: the counters exist at 0 from the start.
    assert series_values(prometheus, panel_query("Gateway concurrency rejections")) == {"": 0.0}
    rejected = series_values(prometheus, panel_query("Predictor overload rejections"), "model_name")
    assert rejected == {"clip-image": 0.0, "clip-text": 0.0}, rejected
    # Each request carries fixed captions and a fresh one: some texts hit the gateway's cache, some miss.
    (hit_ratio,) = series_values(prometheus, panel_query("Text cache hit ratio")).values()
    assert 0 < hit_ratio < 1, hit_ratio


def test_text_predictor_outage_fires_error_ratio_and_target_down(
    prometheus: Prometheus, traffic: Traffic, local_stack: LocalStack, incident: float
) -> None:
    def firing() -> dict[tuple[str, str], dict[str, Any]]:
        return {key: a for key, a in active(prometheus).items() if a["state"] == "firing"}

    alerts = poll(
        firing,
        lambda f: (ERROR_RATIO, "") in f and (TARGET_DOWN, "clip-text") in f,
        30,
        f"{ERROR_RATIO} and {TARGET_DOWN}{{job=clip-text}} firing",
    )
    # Users saw 503 "predictor unreachable" (502 if caught mid-shutdown), never a 500 or a hang.
    outage = traffic.statuses(since=incident)
    assert outage[503] > 0 and set(outage) <= {200, 502, 503}, outage
    # What the person on call reads: which process, where, how bad, how urgent.
    down = alerts[(TARGET_DOWN, "clip-text")]
    assert down["labels"]["severity"] == "critical"
    port = local_stack.servers["clip-text"].ports["http"]
    assert f"cannot scrape clip-text at 127.0.0.1:{port}" in down["annotations"]["description"]
    errors = alerts[(ERROR_RATIO, "")]
    assert errors["labels"]["severity"] == "critical"
    assert re.match(r"\d+(\.\d+)?% of requests", errors["annotations"]["description"]), errors
    assert float(errors["value"]) > 0.05
    # A stopped predictor is down, not overloaded: no traffic reaches it, so no ratio, no alert.
    assert OVERLOADED not in {name for name, _ in active(prometheus)}
    # Only the stopped process is reported down.
    assert {job for name, job in alerts if name == TARGET_DOWN} == {"clip-text"}
    # The dashboard shows it: 503s, a 5xx ratio over the threshold, the text predictor unreachable.
    statuses = series_values(prometheus, panel_query("Requests by status"), "http_status")
    assert statuses.get("503", 0) > 0, statuses
    (ratio,) = series_values(prometheus, panel_query("5xx ratio")).values()
    assert ratio > 0.05
    reasons = series_values(prometheus, panel_query("Predictor errors by reason"), "predictor", "reason")
    assert reasons.get("text unreachable", 0) > 0, reasons


def test_alerts_resolve_when_the_predictor_is_back(
    prometheus: Prometheus, traffic: Traffic, recovered: float
) -> None:
    poll(
        lambda: sorted(active(prometheus)),
        lambda keys: not {name for name, _ in keys} & {ERROR_RATIO, TARGET_DOWN},
        45,
        f"{ERROR_RATIO} and {TARGET_DOWN} resolved",
    )
    assert prometheus.targets()["clip-text"] == "up"
    # Comparisons answer again; everything after the restart was a success.
    poll(lambda: traffic.statuses(since=recovered), lambda s: s[200] >= 3, 30, "answering again")
    assert set(traffic.statuses(since=recovered)) == {200}, traffic.statuses(since=recovered)


def grafana(expr: str) -> str:
    """`expr` as Grafana sends it with every variable on "All" (allValue `.*`)."""
    for var, value in {**GRAFANA_VARS, "$__rate_interval": RATE_INTERVAL}.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, expr
    return expr


def panel_query(title: str) -> str:
    """The (first) query of the dashboard panel titled `title`, as Grafana sends it."""
    (panel,) = (p for p in panels(json.loads(DASHBOARD.read_text())) if p["title"] == title)
    return grafana(panel["targets"][0]["expr"])


def series_values(prometheus: Prometheus, expr: str, *labels: str) -> dict[str, float]:
    """ "<label values>" -> value of each series `expr` returns now."""
    return {
        " ".join(s["metric"].get(label, "") for label in labels): float(s["value"][1])
        for s in prometheus.query(expr)
    }


def is_gpu(expr: str) -> bool:
    return "DCGM_" in expr


def test_every_dashboard_panel_shows_data(
    prometheus: Prometheus, traffic: Traffic, local_stack: LocalStack, recovered: float
) -> None:
    # One input the image predictor rejects, so "Inference errors by reason" has something to show.
    image = local_stack.servers["clip-image"].ports["http"]
    bad = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}]}
    assert (
        httpx.post(f"http://127.0.0.1:{image}/v2/models/clip-image/infer", json=bad, timeout=10).status_code
        == 400
    )

    dashboard = json.loads(DASHBOARD.read_text())
    queries = {
        f"{p['title']} / {t.get('legendFormat', t['refId'])}": grafana(t["expr"])
        for p in panels(dashboard)
        for t in p["targets"]
        if not is_gpu(t["expr"])
    }
    assert len(queries) >= 20

    def without_data() -> dict[str, str]:
        return {
            name: expr
            for name, expr in queries.items()
            if not any(math.isfinite(float(s["value"][1])) for s in prometheus.query(expr))
        }

    poll(without_data, lambda empty: not empty, 30, "data in every panel (panel: query)")
    # The variables' own queries fill the dropdowns: the job picker lists the three programs.
    variables = {
        v["name"]: v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"
    }
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", grafana(variables["job"]))
    assert match is not None
    values = prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})
    assert sorted(values) == sorted(JOBS)
