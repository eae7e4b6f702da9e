"""Images of concurrent requests share image predictor calls, through the real processes.

The gateway keeps one image call in flight (`GATEWAY_IMAGE_CALLS_IN_FLIGHT=1`) and the image predictor
holds each batch open for 300 ms (`--max_batch_delay_ms`), so requests that arrive together find the one
call busy and wait for it, as they do under load with the default bound and a real model.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.gateway.conftest import slow_image_stack
from tests.gateway.test_textbatch_real import calls
from tests.support.metrics import scraped
from tests.support.stack import LocalStack
from tests.support.tiers import process_fixture

COLOURS = ["red", "green", "blue", "white", "black", "yellow", "purple", "orange"]


@process_fixture(scope="module")
def stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with slow_image_stack(
        tiny_dir, tmp_path_factory.mktemp("logs"), {"GATEWAY_IMAGE_CALLS_IN_FLIGHT": "1"}
    ) as s:
        yield s


def body(colour: str) -> dict[str, object]:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return {"image": base64.b64encode(buf.getvalue()).decode(), "text": "a colourful square"}


def truncated_png() -> bytes:
    """A PNG whose header is whole (the gateway accepts it) and whose pixels stop halfway (the predictor
    cannot decode it)."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48).save(buf, "PNG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def together(client: httpx.Client, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: client.post("/compare/", json=b), bodies))


def test_concurrent_requests_share_image_calls_and_get_the_answers_they_get_alone(stack) -> None:
    url = stack.gateway_url
    with httpx.Client(base_url=url, timeout=30) as client:
        alone = [client.post("/compare/", json=body(c)) for c in COLOURS]  # one at a time
        before = calls(url)
        shared = together(client, [body(c) for c in COLOURS])
        after = calls(url)
    assert [r.status_code for r in alone + shared] == [200] * 2 * len(COLOURS)
    for a, s in zip(alone, shared, strict=True):
        assert s.json()["similarity"] == pytest.approx(a.json()["similarity"], abs=1e-6)
    # The first request took the one call; the others waited for it and then went together.
    assert after["image"] - before["image"] <= len(COLOURS) // 2


def rejected(url: str) -> float:
    """Image predictor calls answered 400, as the gateway counts them."""
    return scraped(url, "predictor_errors_total", predictor="image", reason="bad_request")


def image_queued(stack: LocalStack) -> float:
    """The image predictor's `clip_queued_items`: images admitted and not yet answered."""
    url = f"http://127.0.0.1:{stack.servers['clip-image'].ports['http']}"
    return scraped(url, "clip_queued_items", model_name="clip-image")


def test_a_bad_image_among_waiting_requests_fails_alone(stack) -> None:
    bodies = [body(c) for c in COLOURS]
    bodies[3] = {"image": base64.b64encode(truncated_png()).decode(), "text": "a colourful square"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client, ThreadPoolExecutor(1) as lead:
        before = rejected(stack.gateway_url)
        # A first request takes the one call and the predictor holds it open, so that all eight wait
        # and share the next call; without it, the bad image could arrive first and go alone.
        leader = lead.submit(client.post, "/compare/", json=body("white"))
        deadline = time.monotonic() + 10
        while image_queued(stack) < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        answers = together(client, bodies)
        after = client.post("/compare/", json=body("red"))
    assert leader.result().status_code == 200
    # Its shared call was refused, then it alone: the others went again alone and were answered.
    assert rejected(stack.gateway_url) - before == 2
    assert [r.status_code for r in answers] == [200, 200, 200, 400, 200, 200, 200, 200]
    # The predictor's own reason, naming the image by its place in its own request, not the shared call.
    assert "image[0] could not be decoded" in answers[3].json()["error"]
    assert after.status_code == 200
