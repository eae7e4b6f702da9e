"""The real programs under the real Prometheus with prometheus/prometheus.yml and rules.yml (slow).

Proves that the local scrape config reaches all three jobs, that the generated rules load and evaluate,
and that every metric the alerts and dashboard name (DCGM aside) is really exported.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from devtools.procs import Program
from tests.deploy.chart import ROOT, tool
from tests.deploy.test_dashboard import DASHBOARD, SELECTOR, metric_family
from tests.support.prometheus import local_config, start_prometheus
from tests.support.stack import JOBS, LocalStack
from tests.support.tiers import process_fixture
from tests.support.traffic import png


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> dict[str, Program]:
    # Traffic, so labelled series exist: one good and one bad comparison.
    base = local_stack.gateway_url
    httpx.post(f"{base}/compare/", json={"image": _png_b64(), "text": ["a red square", "a cat"]}, timeout=30)
    httpx.post(f"{base}/compare/", json={"image": "bm90IGFuIGltYWdl", "text": "x"}, timeout=30)
    return local_stack.servers


def _png_b64() -> str:
    return base64.b64encode(png((200, 20, 20), size=32)).decode()


@process_fixture(scope="module")
def prometheus(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = local_config(local_stack.http_ports(), ROOT / "prometheus" / "rules.yml", interval="1s")
    prom = start_prometheus(tool("prometheus"), config, tmp_path_factory.mktemp("prometheus"))
    try:
        yield prom.url
    finally:
        prom.server.stop()


def exported_families(stack: dict[str, Program]) -> set[str]:
    names = set()
    for server in stack.values():
        text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=10).text
        names |= set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    # prometheus_client names a counter family without its _total suffix.
    return names | {f"{n}_total" for n in names}


def test_every_metric_the_alerts_and_dashboard_name_is_exported(stack: dict[str, Program]) -> None:
    exported = exported_families(stack)
    rules = yaml.safe_load((ROOT / "prometheus" / "rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]
    named = {metric_family(m) for e in exprs for m in SELECTOR.findall(e)}
    named -= {"up", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"}  # Prometheus's own, NVIDIA's exporter
    assert named - exported == set()


def test_local_prometheus_scrapes_all_jobs_and_loads_the_alerts(prometheus: str) -> None:
    deadline = time.monotonic() + 30
    up: dict[str, str] = {}
    while time.monotonic() < deadline and len(up) < len(JOBS):
        result = httpx.get(f"{prometheus}/api/v1/query", params={"query": "up == 1"}, timeout=5).json()
        up = {r["metric"]["job"]: r["value"][1] for r in result["data"]["result"]}
        time.sleep(0.5)
    assert set(up) == set(JOBS)
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == {
        "ClipGatewayHighLatency",
        "ClipGatewayHighErrorRatio",
        "ClipTargetDown",
        "ClipPredictorOverloaded",
        "ClipPredictorQueueSaturated",
    }
    assert all(r["health"] in {"ok", "unknown"} for r in rules), rules
