"""Texts of concurrent /compare/ requests share text predictor calls, through the real processes.

The image predictor holds each batch open for 300 ms (`--max_batch_delay_ms`), so its calls are slow
enough for the gateway to let texts wait for company, as it does under load with a real model.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import slow_image_stack
from tests.support.stack import LocalStack
from tests.support.tiers import process_fixture

COLOURS = ["red", "green", "blue", "white", "black", "yellow", "purple", "orange", "gray", "pink"]


@process_fixture(scope="module")
def stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {
        "GATEWAY_TEXT_CACHE_SIZE": "0",  # every text reaches the predictor
        "GATEWAY_IMAGE_CALLS_IN_FLIGHT": "0",  # one image call a request (test_imagesharing_real)
    }
    with slow_image_stack(tiny_dir, tmp_path_factory.mktemp("logs"), env) as s:
        yield s


def body(colour: str) -> dict[str, object]:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return {"image": base64.b64encode(buf.getvalue()).decode(), "text": [f"a {colour} square", "a dog"]}


def calls(url: str) -> dict[str, float]:
    """Predictor calls the gateway has made, by predictor."""
    text = httpx.get(f"{url}/metrics").text
    return {
        s.labels["predictor"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "predictor_request_duration_seconds_count"
    }


def test_concurrent_requests_share_text_calls_and_get_the_answers_they_get_alone(stack) -> None:
    url = stack.gateway_url
    with httpx.Client(base_url=url, timeout=30) as client:
        before = calls(url)
        alone = [client.post("/compare/", json=body(c)) for c in COLOURS]  # one at a time
        middle = calls(url)
        with ThreadPoolExecutor(len(COLOURS)) as pool:
            together = list(pool.map(lambda c: client.post("/compare/", json=body(c)), COLOURS))
        after = calls(url)
    assert [r.status_code for r in alone + together] == [200] * 2 * len(COLOURS)
    for a, t in zip(alone, together, strict=True):
        assert t.json()["similarities"] == pytest.approx(a.json()["similarities"], abs=1e-6)
        assert t.json()["probabilities"] == pytest.approx(a.json()["probabilities"], abs=1e-6)
    # Alone, each request's texts went at once in a call of their own ...
    assert middle["text"] - before.get("text", 0) == len(COLOURS)
    # ... together, while the images were encoding, they shared calls.
    assert after["image"] - middle["image"] == len(COLOURS)
    assert after["text"] - middle["text"] <= len(COLOURS) // 2
