"""The gateway's concurrency bound (GATEWAY_MAX_CONCURRENCY): past it a request is refused at once with
503 and Retry-After, after the API key is checked; every request gives its slot back, failed or not."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import httpx
from fastapi.testclient import TestClient

from tests.gateway.fakes import FakePredictors, png
from tests.support.gateway_clients import MakeClient

KEY = {"Authorization": "Bearer k"}


def compare(client: TestClient, headers: dict[str, str] = KEY) -> httpx.Response:
    return client.post(
        "/compare/", files={"image": ("x.png", png(), "image/png")}, data={"text": "a"}, headers=headers
    )


@contextmanager
def one_request_held(client: TestClient, fake: FakePredictors) -> Iterator[Future[httpx.Response]]:
    """A /compare/ whose image call the fake predictor holds until the block ends."""
    held, release = threading.Event(), threading.Event()

    async def hold(request: httpx.Request) -> None:
        if request.url.path.endswith("/infer"):
            held.set()
            await asyncio.to_thread(release.wait, 10)

    fake.override["image"] = hold
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(compare, client)
        assert held.wait(10), "the first request never reached the image predictor"
        try:
            yield first
        finally:
            release.set()
    del fake.override["image"]


def test_past_the_bound_a_request_is_refused_at_once(make_client: MakeClient, fake: FakePredictors) -> None:
    client = make_client(gateway_max_concurrency=1, gateway_api_keys="k")
    with one_request_held(client, fake) as first:
        busy = "the gateway is at its limit of 1 requests in flight; retry shortly"
        r = client.post("/embed_text/", json={"text": "b"}, headers=KEY)
        assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", {"error": busy})
        r = client.post("/v1/embeddings", json={"input": "b", "model": "m"}, headers=KEY)
        assert (r.status_code, r.headers["retry-after"], r.json()["error"]["message"]) == (503, "1", busy)
        # The key is checked first: a request without one is told so, not that the gateway is busy.
        assert compare(client, headers={}).status_code == 401
        assert client.get("/healthz").status_code == 200  # operations endpoints are not bounded
    assert first.result(10).status_code == 200
    assert "gateway_rejected_requests_total 2.0" in client.get("/metrics").text
    assert compare(client).status_code == 200


def test_failed_requests_give_their_slot_back(make_client: MakeClient, fake: FakePredictors) -> None:
    client = make_client(gateway_max_concurrency=1)
    bad_input = client.post("/compare/", json={"image": "not base64!", "text": "a"})
    assert bad_input.status_code == 400
    fake.override["text"] = lambda request: httpx.Response(500, json={"error": "boom"})
    assert compare(client, headers={}).status_code == 502
    del fake.override["text"]
    assert compare(client, headers={}).status_code == 200
    assert "gateway_rejected_requests_total 0.0" in client.get("/metrics").text
