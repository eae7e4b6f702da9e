"""ViT-B-32 with random weights: the real architecture's shapes, parity, exact trimming, a live server."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from devtools.procs import Program
from predictors.text_encoding import can_trim, encode_text
from tests.support.models import write_vit_b_32
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import Reference, assert_same_embeddings, distinct_image, encode, sample_images

TEXTS = ["a diagram", "a photo of a cat sitting on a red chair", "x " * 120]
READY_BOUND_S = 0.050


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vit_b_32(tmp_path_factory.mktemp("models") / "vit-b-32")


@pytest.fixture(scope="module")
def vit_ref(vit_dir: Path) -> Reference:
    return Reference(vit_dir)


@process_fixture(scope="module")
def vit_image(vit_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", vit_dir, log_dir, "--max_batch_size", "8")


@process_fixture(scope="module")
def vit_text(vit_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", vit_dir, log_dir)


def infer(server: Program, kind: str, data: list[str]) -> dict:
    body = {"inputs": [{"name": kind, "datatype": "BYTES", "shape": [len(data)], "data": data}]}
    url = f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{kind}/infer"
    r = httpx.post(url, json=body, timeout=120)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_trimmed_text_equals_full_context(vit_ref: Reference) -> None:
    assert can_trim(vit_ref.model)
    tokens = vit_ref.tokenizer(TEXTS)
    with torch.inference_mode():
        full = vit_ref.model.encode_text(tokens)
        trimmed = encode_text(vit_ref.model, tokens, trim=True)
        short = encode_text(vit_ref.model, tokens[:2], trim=True)
    assert torch.nn.functional.cosine_similarity(trimmed, full).min() >= 0.99999
    assert torch.nn.functional.cosine_similarity(short, full[:2]).min() >= 0.99999


def test_served_embeddings_match_open_clip(vit_image: Program, vit_text: Program, vit_ref: Reference) -> None:
    images = sample_images()[:2]
    out = infer(vit_image, "image", [base64.b64encode(i).decode() for i in images])
    got = np.array(out["outputs"][0]["data"]).reshape(out["outputs"][0]["shape"])
    assert got.shape == (2, 512)
    assert_same_embeddings(got, vit_ref.images(images))
    assert out["parameters"]["arch"] == "ViT-B-32" and out["parameters"]["embed_dim"] == 512

    out = infer(vit_text, "text", TEXTS)
    got = np.array(out["outputs"][0]["data"]).reshape(out["outputs"][0]["shape"])
    assert_same_embeddings(got, vit_ref.texts(TEXTS))
    assert out["parameters"]["logit_scale"] == pytest.approx(vit_ref.logit_scale, rel=1e-6)


def test_ready_answers_within_50ms_during_a_forward_pass(vit_image: Program) -> None:
    images = [base64.b64encode(encode(distinct_image(200 + i, (224, 224)))).decode() for i in range(8)]
    base = f"http://127.0.0.1:{vit_image.ports['http']}"

    async def scenario() -> tuple[list[float], float, float]:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            await client.get("/v2/health/ready")  # open the connection before timing
            body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [8], "data": images}]}
            started = time.monotonic()
            task = asyncio.create_task(client.post("/v2/models/clip-image/infer", json=body))
            await asyncio.sleep(0.3)  # decoding done, the 8-image pass running
            latencies, polled_until = [], 0.0
            for _ in range(10):
                t = time.monotonic()
                assert (await client.get("/v2/health/ready")).status_code == 200
                latencies.append(time.monotonic() - t)
                polled_until = time.monotonic()
                await asyncio.sleep(0.02)
            assert (await task).status_code == 200
            return latencies, polled_until - started, time.monotonic() - started

    latencies, polled, total = asyncio.run(scenario())
    assert polled < total, "the forward pass ended before the readiness checks did"
    assert max(latencies) < READY_BOUND_S, latencies
