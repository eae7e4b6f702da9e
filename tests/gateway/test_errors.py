"""Predictor failures become honest status codes, each with an {"error": ...} a person can act on."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.gateway.fakes import DIM, FakePredictors, infer_request, png, vector
from tests.support.gateway_clients import MakeClient


def compare(client: TestClient, *texts: str) -> httpx.Response:
    return client.post(
        "/compare/", files={"image": ("x.png", png(), "image/png")}, data={"text": list(texts or ["a"])}
    )


def answer(status: int, body: dict | str) -> object:
    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return respond


@pytest.mark.parametrize(
    ("predictor", "status", "body", "expected", "reason", "says"),
    [
        ("image", 400, {"error": "cannot decode image: truncated"}, 400, "bad_request", "truncated"),
        ("text", 400, {"error": "text[0] is empty"}, 400, "bad_request", "text[0] is empty"),
        (
            "image",
            404,
            {"error": "Model with name clip-image does not exist."},
            502,
            "not_found",
            "IMAGE_MODEL_NAME",
        ),
        ("text", 500, "Internal Server Error", 502, "server_error", "failed with 500"),
        ("image", 503, {"error": "Model clip-image is not ready"}, 503, "not_ready", "not ready"),
        ("text", 200, {"outputs": []}, 502, "bad_response", "bad response"),
        ("image", 200, "not json", 502, "bad_response", "bad response"),
    ],
)
def test_predictor_answers_map_to_status_codes(
    make_client: MakeClient, fake: FakePredictors, predictor, status, body, expected, reason, says
) -> None:
    fake.override[predictor] = answer(status, body)
    client = make_client()
    r = compare(client)
    assert r.status_code == expected, r.text
    assert r.json().keys() == {"error"}
    assert says in r.json()["error"]
    assert predictor in r.json()["error"]
    metrics = client.get("/metrics").text
    assert f'predictor_errors_total{{predictor="{predictor}",reason="{reason}"}} 1.0' in metrics


def test_unreachable_predictor_is_503_after_one_retry(make_client: MakeClient, fake: FakePredictors) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.override["text"] = refuse
    r = compare(make_client())
    assert r.status_code == 503
    assert "text predictor at http://text.test is unreachable" in r.json()["error"]
    assert len(fake.calls("text")) == 2


def test_read_errors_are_not_retried(make_client: MakeClient, fake: FakePredictors) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    fake.override["image"] = fail
    assert compare(make_client()).status_code == 503
    assert len(fake.calls("image")) == 1


def test_slow_predictor_is_504(make_client: MakeClient, fake: FakePredictors) -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    fake.override["image"] = stall
    r = compare(make_client(predictor_timeout_s=0.2))
    assert r.status_code == 504
    assert r.json() == {"error": "the image predictor did not answer within 0.2 s"}


def test_several_texts_need_logit_scale_from_the_text_predictor(make_client: MakeClient, fake) -> None:
    def no_scale(request: httpx.Request) -> httpx.Response:
        n = len(infer_request(request)[1])
        return httpx.Response(
            200,
            json={
                "outputs": [
                    {"name": "embedding", "datatype": "FP32", "shape": [n, DIM], "data": vector(b"t") * n}
                ]
            },
        )

    fake.override["text"] = no_scale
    client = make_client()
    assert compare(client, "one").status_code == 200  # one text needs no softmax
    r = compare(client, "one", "two")
    assert r.status_code == 502
    assert "logit_scale" in r.json()["error"]


def test_predictors_serving_different_models_is_502(make_client: MakeClient, fake) -> None:
    fake.override["text"] = answer(
        200, {"outputs": [{"name": "embedding", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 0.0]}]}
    )
    r = compare(make_client())
    assert r.status_code == 502
    assert "different models" in r.json()["error"]
