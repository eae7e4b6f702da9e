"""Auth, health, readiness, metrics, docs, and what the gateway does not import."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from devtools.procs import ROOT
from tests.gateway.fakes import FakePredictors, png
from tests.support.gateway_clients import MakeClient

FILES = {"files": {"image": ("x.png", png(), "image/png")}, "data": {"text": "a"}}


def samples(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Values of one metric family, keyed by sorted labels."""
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_api_keys_guard_the_api_but_not_health_or_metrics(make_client: MakeClient, fake) -> None:
    client = make_client(gateway_api_keys="k1,  s3cret ")
    for headers in (
        {},
        {"authorization": "Bearer nope"},
        {"authorization": "s3cret"},
        {"authorization": "Basic s3cret"},
        {"authorization": "Bearer "},
    ):
        r = client.post("/compare/", headers=headers, **FILES)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert "API key" in r.json()["error"]
    assert fake.requests == []
    assert client.post("/compare/", headers={"authorization": "Bearer s3cret"}, **FILES).status_code == 200
    assert (
        client.post("/embed_text/", headers={"authorization": "bearer k1"}, json={"text": "a"}).status_code
        == 200
    )
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_readyz_needs_both_predictors_and_caches_its_look(
    make_client: MakeClient, fake: FakePredictors
) -> None:
    client = make_client(gateway_readiness_cache_s=60)
    for _ in range(5):
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"ready": True, "predictors": {"image": "ready", "text": "ready"}}
    assert len(fake.calls("image", "/ready")) == len(fake.calls("text", "/ready")) == 1
    assert fake.calls("image", "/ready")[0].url.path == "/v2/models/clip-image/ready"


def test_readyz_says_which_predictor_is_not_ready(make_client: MakeClient, fake: FakePredictors) -> None:
    fake.override["text"] = lambda request: httpx.Response(503, json={"error": "model not loaded"})
    r = make_client(gateway_readiness_cache_s=0).get("/readyz")
    assert r.status_code == 503
    assert r.json()["predictors"] == {
        "image": "ready",
        "text": "model 'clip-text' not ready (503: model not loaded)",
    }
    assert "text predictor" in r.json()["error"]


def test_healthz_does_not_touch_the_predictors(client: TestClient, fake) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert fake.requests == []


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    client.post("/compare/", **FILES)
    client.post("/compare/", **FILES)
    client.post("/compare/", json={})
    client.get("/no/such/path/123")
    client.get("/another/random/path")
    client.request("BREW", "/compare/")
    counts = samples(client, "http_requests_total")
    assert counts[(("handler", "/compare/"), ("http_status", "200"), ("method", "POST"))] == 2
    assert counts[(("handler", "/compare/"), ("http_status", "422"), ("method", "POST"))] == 1
    assert counts[(("handler", "/compare/"), ("http_status", "405"), ("method", "other"))] == 1
    assert counts[(("handler", "unmatched"), ("http_status", "404"), ("method", "GET"))] == 2
    assert not any("random" in dict(k)["handler"] for k in counts)
    durations = samples(client, "http_request_duration_seconds_count")
    assert durations[(("handler", "/compare/"), ("method", "POST"))] == 3
    predictor = samples(client, "predictor_request_duration_seconds_count")
    assert predictor == {(("predictor", "image"),): 2, (("predictor", "text"),): 2}
    buckets = {dict(k)["le"] for k in samples(client, "http_request_duration_seconds_bucket")}
    assert {"0.005", "30.0", "+Inf"} <= buckets


def test_unknown_paths_and_methods_get_json_errors(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "no endpoint at /nope (the API is described at /docs)"}
    r = client.get("/compare/")
    assert r.status_code == 405
    assert r.json() == {"error": "GET is not allowed on /compare/"}


def test_openapi_declares_bodies_and_error_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    compare = spec["paths"]["/compare/"]["post"]
    assert set(compare["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"200", "400", "401", "413", "415", "422", "502", "503", "504"} <= set(compare["responses"])
    assert (
        "application/x-www-form-urlencoded" in spec["paths"]["/embed_text/"]["post"]["requestBody"]["content"]
    )


@pytest.mark.usefixtures("starts_processes")
def test_gateway_does_not_import_torch_open_clip_or_kserve() -> None:
    code = (
        "import sys, gateway.app, gateway.__main__\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'kserve', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unexpected_error_is_a_json_500_with_the_request_id(make_client: MakeClient) -> None:
    client = make_client()

    async def broken() -> None:
        raise RuntimeError("bug")

    client.app.add_api_route("/broken", broken)  # type: ignore[attr-defined]
    r = client.get("/broken", headers={"x-request-id": "req-500"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error; quote request id req-500"}
    assert r.headers["x-request-id"] == "req-500"
    counts = samples(client, "http_requests_total")
    assert counts[(("handler", "/broken"), ("http_status", "500"), ("method", "GET"))] == 1


def test_predictor_error_series_exist_at_zero_before_any_error(client: TestClient) -> None:
    errors = samples(client, "predictor_errors_total")
    assert len(errors) == 16  # 2 predictors x 8 reasons
    assert set(errors.values()) == {0.0}
    assert errors[(("predictor", "text"), ("reason", "timeout"))] == 0.0


def test_metrics_include_the_process_resources_the_dashboard_shows(client: TestClient) -> None:
    memory = samples(client, "process_resident_memory_bytes")
    cpu = samples(client, "process_cpu_seconds_total")
    assert memory[()] > 10_000_000 and cpu[()] > 0
