"""The OpenAI-compatible routes' place in the gateway, over fake predictors: OpenAI's error shape on
/v1/* only, the routes' metric series from start, and their OpenAPI entries."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.fakes import FakePredictors
from tests.support.gateway_clients import MakeClient


def test_errors_on_v1_take_openai_shape_and_the_others_keep_theirs(make_client: MakeClient) -> None:
    client = make_client(gateway_api_keys="k")
    unauthorised = client.post("/v1/embeddings", json={"model": "m", "input": "a"})
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {
        "error": {
            "message": "missing API key: send 'Authorization: Bearer <key>'",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert client.post("/embed/", json={"image": "x"}).json() == {
        "error": "missing API key: send 'Authorization: Bearer <key>'"
    }
    key = {"authorization": "Bearer k"}
    unknown = client.get("/v1/nothing", headers=key)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
    form = client.post("/v1/embeddings", data={"input": "a"}, headers=key)
    assert form.status_code == 415 and "send application/json" in form.json()["error"]["message"]
    missing = client.post("/v1/embeddings", json={"input": "a"}, headers=key)
    assert missing.status_code == 422
    assert (
        missing.json()["error"]["param"] == "model"
        and "missing field 'model'" in missing.json()["error"]["message"]
    )


def test_a_text_predictor_without_token_counts_is_a_502(client: TestClient, fake: FakePredictors) -> None:
    def config(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/config"):
            return httpx.Response(200, json={"parameters": {"arch": "A", "pretrained": "w", "embed_dim": 8}})
        return None

    fake.override["text"] = config
    assert client.get("/v1/models").json()["data"][0]["id"] == "A/w"
    response = client.post("/v1/embeddings", json={"model": "A/w", "input": "a"})
    assert response.status_code == 502
    assert "token count" in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "server_error"


def test_v1_routes_have_metric_series_from_start_and_openapi_entries(client: TestClient) -> None:
    samples = {
        (s.labels.get("handler"), s.labels.get("http_status"))
        for family in text_string_to_metric_families(client.get("/metrics").text)
        if family.name == "http_requests"
        for s in family.samples
    }
    for status in ("200", "500", "502", "503", "504"):
        assert ("/v1/embeddings", status) in samples
    assert ("/v1/models", "200") in samples
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"] and {"model", "input"} <= set(body["schema"]["required"])
    assert "/v1/models" in spec["paths"]
    assert "404" in spec["paths"]["/v1/embeddings"]["post"]["responses"]


def test_a_failed_model_lookup_is_a_502_counted_like_a_failed_call(
    client: TestClient, fake: FakePredictors
) -> None:
    def config(request: httpx.Request) -> httpx.Response | None:
        return (
            httpx.Response(404, json={"error": "no such model"})
            if request.url.path.endswith("/config")
            else None
        )

    fake.override["text"] = config
    response = client.get("/v1/models")
    assert response.status_code == 502 and "did not describe model" in response.json()["error"]["message"]
    errors = {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        if family.name == "predictor_errors"
        for s in family.samples
        if s.name == "predictor_errors_total" and s.labels["predictor"] == "text"
    }
    assert errors["bad_response"] == 1.0
