"""The real programs under the real Prometheus with prometheus/prometheus.yml and rules.yml (slow).

Proves that the local scrape config reaches all three jobs, that the generated rules load and evaluate,
and that every metric the alerts and dashboard name (DCGM aside) is really exported.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.deploy.chart import ROOT, tool
from tests.deploy.test_dashboard import DASHBOARD, SELECTOR, metric_family
from tests.support.models import write_tiny_model
from tests.support.procs import PYTHON, Server, free_port

pytestmark = pytest.mark.slow
JOBS = ("clip-gateway", "clip-image", "clip-text")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp = tmp_path_factory.mktemp("stack")
    model = write_tiny_model(tmp / "model")
    servers: dict[str, Server] = {}
    try:
        for key in ("image", "text"):
            http, grpc = free_port(), free_port()
            servers[f"clip-{key}"] = Server(
                f"clip-{key}",
                [
                    PYTHON,
                    "-m",
                    f"predictors.{key}",
                    "--model_dir",
                    str(model),
                    "--http_port",
                    str(http),
                    "--grpc_port",
                    str(grpc),
                ],
                ready_url=f"http://127.0.0.1:{http}/v2/models/clip-{key}/ready",
                log_path=tmp / f"{key}.log",
                ports={"http": http},
            ).start(timeout=120)
        port = free_port()
        servers["clip-gateway"] = Server(
            "gateway",
            [PYTHON, "-m", "gateway"],
            ready_url=f"http://127.0.0.1:{port}/healthz",
            env={
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "IMAGE_PREDICTOR_URL": f"http://127.0.0.1:{servers['clip-image'].ports['http']}",
                "TEXT_PREDICTOR_URL": f"http://127.0.0.1:{servers['clip-text'].ports['http']}",
            },
            log_path=tmp / "gateway.log",
            ports={"http": port},
        ).start(timeout=60)
        # Traffic, so labelled series exist: one good and one bad comparison.
        base = f"http://127.0.0.1:{port}"
        httpx.post(
            f"{base}/compare/", json={"image": _png_b64(), "text": ["a red square", "a cat"]}, timeout=30
        )
        httpx.post(f"{base}/compare/", json={"image": "bm90IGFuIGltYWdl", "text": "x"}, timeout=30)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _png_b64() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 20, 20)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def prometheus(stack: dict[str, Server], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ROOT / "prometheus" / "rules.yml")]
    for job in config["scrape_configs"]:
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{stack[job['job_name']].ports['http']}"]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = Server(
        "prometheus",
        [
            tool("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        ready_url=f"http://127.0.0.1:{port}/-/ready",
        log_path=tmp / "prometheus.log",
    ).start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def exported_families(stack: dict[str, Server]) -> set[str]:
    names = set()
    for server in stack.values():
        text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=10).text
        names |= set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    # prometheus_client names a counter family without its _total suffix.
    return names | {f"{n}_total" for n in names}


def test_every_metric_the_alerts_and_dashboard_name_is_exported(stack: dict[str, Server]) -> None:
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
        "ClipPredictorQueueSaturated",
    }
    assert all(r["health"] in {"ok", "unknown"} for r in rules), rules
