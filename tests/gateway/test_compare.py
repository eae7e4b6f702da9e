"""POST /compare/, /embed/ and /embed_text/ over fake predictors: results, fan-out, forwarding."""

from __future__ import annotations

import asyncio
import base64
import math

import httpx
from fastapi.testclient import TestClient

from tests.gateway.fakes import FakePredictors, infer_request, png, vector
from tests.support.gateway_clients import MakeClient


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def multipart(image: bytes, *texts: str) -> dict:
    return {"files": {"image": ("x.png", image, "image/png")}, "data": {"text": list(texts)}}


def test_one_text_gives_the_cosine_of_the_two_embeddings(client: TestClient) -> None:
    image = png()
    r = client.post("/compare/", **multipart(image, "a red square"))
    assert r.status_code == 200, r.text
    assert r.json().keys() == {"similarity"}
    assert math.isclose(r.json()["similarity"], cos(vector(image), vector(b"a red square")), abs_tol=1e-9)


def test_several_texts_give_softmax_of_logit_scale_times_similarities(client: TestClient, fake) -> None:
    image, texts = png(), ["a", "b", "c"]
    r = client.post("/compare/", json={"image": base64.b64encode(image).decode(), "text": texts})
    assert r.status_code == 200, r.text
    sims = [cos(vector(image), vector(t.encode())) for t in texts]
    assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(r.json()["similarities"], sims, strict=True))
    # logit_scale comes from the text predictor (10 here), not a hard-coded 100.
    exps = [math.exp(fake.logit_scale * s) for s in sims]
    expected = [e / sum(exps) for e in exps]
    probs = r.json()["probabilities"]
    assert all(math.isclose(p, q, abs_tol=1e-9) for p, q in zip(probs, expected, strict=True))
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)


def test_json_multipart_and_data_uri_give_the_same_answer(client: TestClient) -> None:
    image = png(colour="blue")
    b64 = base64.b64encode(image).decode()
    answers = [
        client.post("/compare/", **multipart(image, "x", "y")).json(),
        client.post("/compare/", json={"image": b64, "text": ["x", "y"]}).json(),
        client.post("/compare/", json={"image": f"data:image/png;base64,{b64}", "text": ["x", "y"]}).json(),
        client.post("/compare/", json={"image": b64[:40] + "\n" + b64[40:], "text": ["x", "y"]}).json(),
    ]
    assert all(a == answers[0] for a in answers), answers


def test_the_original_file_bytes_and_the_request_id_reach_both_predictors(client: TestClient, fake) -> None:
    image = png(7, 5)
    r = client.post("/compare/", headers={"x-request-id": "trace-42"}, **multipart(image, "t1", "t2"))
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "trace-42"
    (image_call,), (text_call,) = fake.calls("image"), fake.calls("text")
    assert image_call.url.path == "/v2/models/clip-image/infer"
    assert text_call.url.path == "/v2/models/clip-text/infer"
    (image_body, images), (text_body, texts) = infer_request(image_call), infer_request(text_call)
    assert images == [image] and texts == [b"t1", b"t2"]  # the file as sent, no re-encoding
    assert image_body["inputs"][0] == {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "parameters": {"binary_data_size": 4 + len(image)},
    }
    assert text_body["inputs"][0] | {"parameters": None} == {
        "name": "text",
        "datatype": "BYTES",
        "shape": [2],
        "parameters": None,
    }
    wanted = [{"name": "embedding", "parameters": {"binary_data": True}}]
    assert image_body["outputs"] == text_body["outputs"] == wanted
    assert image_body["id"] == text_body["id"] == "trace-42"
    assert image_call.headers["x-request-id"] == text_call.headers["x-request-id"] == "trace-42"


def test_a_request_id_is_generated_when_missing_or_unsafe(client: TestClient, fake) -> None:
    generated = client.post("/compare/", **multipart(png(), "a")).headers["x-request-id"]
    assert len(generated) == 32
    unsafe = client.post("/compare/", headers={"x-request-id": "a b\tc"}, **multipart(png(), "a"))
    assert unsafe.headers["x-request-id"] not in ("a b\tc", generated)
    assert fake.calls("text")[-1].headers["x-request-id"] == unsafe.headers["x-request-id"]
    # Also on errors.
    assert "x-request-id" in client.post("/compare/", json={}).headers


def test_server_timing_header_tells_the_time_in_each_predictor(client: TestClient) -> None:
    r = client.post("/compare/", **multipart(png(), "a"))
    parts = dict(p.strip().split(";dur=") for p in r.headers["server-timing"].split(","))
    assert parts.keys() == {"image", "text"}
    assert all(float(v) >= 0 for v in parts.values())


def test_fan_out_is_concurrent(make_client: MakeClient, fake: FakePredictors) -> None:
    """Each predictor answers only once the other has been called too: called one after the other,
    the first would wait for the second forever (here: 30 s, then a 500)."""
    client = make_client()
    client.post("/compare/", **multipart(png(), "warm up"))
    called: set[str] = set()
    both = asyncio.Event()

    async def meet(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/infer"):
            return None
        called.add(request.url.host)
        if len(called) == 2:
            both.set()
        try:
            await asyncio.wait_for(both.wait(), 30)
        except TimeoutError:
            return httpx.Response(500, json={"error": f"only {sorted(called)} called: not concurrent"})
        return None  # the usual answer

    fake.override = {"image": meet, "text": meet}
    r = client.post("/compare/", **multipart(png(), "a"))
    assert r.status_code == 200, r.text


def test_embed_returns_the_image_embedding(client: TestClient) -> None:
    image = png(3, 3)
    for r in (
        client.post("/embed/", files={"image": ("x.png", image, "image/png")}),
        client.post("/embed/", json={"image": base64.b64encode(image).decode()}),
    ):
        assert r.status_code == 200, r.text
        assert r.json() == {"embedding": vector(image)}


def test_embed_text_shape_follows_the_input(client: TestClient) -> None:
    assert client.post("/embed_text/", json={"text": "a"}).json() == {"embedding": vector(b"a")}
    assert client.post("/embed_text/", data={"text": "a"}).json() == {"embedding": vector(b"a")}
    many = {"embeddings": [vector(b"a"), vector(b"b")]}
    assert client.post("/embed_text/", json={"text": ["a", "b"]}).json() == many
    assert client.post("/embed_text/", data={"text": ["a", "b"]}).json() == many
    assert client.post("/embed_text/", files={"text": (None, "a")}).json() == {"embedding": vector(b"a")}


def test_one_retry_after_a_connection_failure(make_client: MakeClient, fake: FakePredictors) -> None:
    failures = iter([True])

    def refuse_once(request: httpx.Request) -> None:
        if next(failures, False):
            raise httpx.ConnectError("connection refused", request=request)

    fake.override["text"] = refuse_once
    r = make_client().post("/compare/", **multipart(png(), "a"))
    assert r.status_code == 200, r.text
    assert len(fake.calls("text")) == 2
