"""Concurrent requests share forward passes, and each still gets exactly its own embeddings."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.procs import Server

from .conftest import serve
from .media import Reference, assert_same_embeddings, distinct_image, encode

pytestmark = pytest.mark.slow

MAX_BATCH = 16
ARGS = ("--max_batch_size", str(MAX_BATCH), "--max_batch_delay_ms", "20")


@pytest.fixture(scope="module")
def image_server(tiny_dir: Path, log_dir: Path) -> Iterator[Server]:
    yield from serve("image", tiny_dir, log_dir, *ARGS)


@pytest.fixture(scope="module")
def text_server(tiny_dir: Path, log_dir: Path) -> Iterator[Server]:
    yield from serve("text", tiny_dir, log_dir, *ARGS)


def histogram(server: Server, name: str, model: str) -> dict[str, float]:
    """{le: cumulative count} plus "count" for one labelled histogram on /metrics."""
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics").text
    buckets = {
        m["le"]: float(m["v"])
        for m in re.finditer(
            rf'^{name}_bucket{{le="(?P<le>[^"]+)",model_name="{model}"}} (?P<v>\S+)$', text, re.M
        )
    }
    count = re.search(rf'^{name}_count{{model_name="{model}"}} (\S+)$', text, re.M)
    assert count is not None and buckets, f"{name} for {model} missing from /metrics"
    return {**buckets, "count": float(count.group(1))}


async def infer_each(server: Server, kind: str, elements: list[str]) -> list[np.ndarray]:
    url = f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{kind}/infer"
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as client:

        async def one(i: int, element: str) -> np.ndarray:
            body = {
                "id": f"r{i}",
                "inputs": [{"name": kind, "datatype": "BYTES", "shape": [1], "data": [element]}],
            }
            r = await client.post(url, json=body)
            assert r.status_code == 200, r.text
            assert r.json()["id"] == f"r{i}"
            return np.array(r.json()["outputs"][0]["data"]).reshape(1, -1)

        return await asyncio.gather(*(one(i, e) for i, e in enumerate(elements)))


def assert_batched(server: Server, model: str) -> None:
    sizes = histogram(server, "clip_batch_size", model)
    assert sizes["1.0"] < sizes["count"], f"every forward pass had one item: {sizes}"
    assert sizes[f"{float(MAX_BATCH)}"] == sizes["count"], f"a batch exceeded {MAX_BATCH}: {sizes}"
    for name in ("clip_queue_seconds", "clip_inference_seconds"):
        assert histogram(server, name, model)["count"] > 0


def test_64_concurrent_texts_each_get_their_own_embedding(text_server: Server, tiny_ref: Reference) -> None:
    texts = [f"a photo of object number {i}" for i in range(64)]
    got = asyncio.run(infer_each(text_server, "text", texts))
    assert_same_embeddings(np.concatenate(got), tiny_ref.texts(texts))
    assert_batched(text_server, "clip-text")


def test_64_concurrent_images_each_get_their_own_embedding(image_server: Server, tiny_ref: Reference) -> None:
    images = [encode(distinct_image(100 + i)) for i in range(64)]
    got = asyncio.run(infer_each(image_server, "image", [base64.b64encode(i).decode() for i in images]))
    assert_same_embeddings(np.concatenate(got), tiny_ref.images(images))
    assert_batched(image_server, "clip-image")


def test_many_items_in_one_request_keep_their_order(text_server: Server, tiny_ref: Reference) -> None:
    texts = [f"{n} red circles" for n in range(MAX_BATCH + 9)]  # more than one batch
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    r = httpx.post(
        f"http://127.0.0.1:{text_server.ports['http']}/v2/models/clip-text/infer", json=body, timeout=60
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [len(texts), 64]
    assert_same_embeddings(np.array(out["data"]).reshape(out["shape"]), tiny_ref.texts(texts))
