"""ViT-B-32 with random weights: the real architecture's shapes, parity, exact trimming, a live server."""

from __future__ import annotations

import asyncio
import base64
import re
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


def test_ready_answers_during_a_forward_pass(vit_image: Program) -> None:
    """Readiness is answered while an 8-image pass runs: from the moment the batch leaves the queue
    (`clip_queue_seconds` counts its items) until the pass ends (`clip_inference_seconds` counts it)."""
    images = [base64.b64encode(encode(distinct_image(200 + i, (224, 224)))).decode() for i in range(8)]
    base = f"http://127.0.0.1:{vit_image.ports['http']}"

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:

            async def count(name: str) -> float:
                text = (await client.get("/metrics")).text
                found = re.search(rf'^{name}_count{{model_name="clip-image"}} (\S+)$', text, re.M)
                return float(found.group(1)) if found else 0.0

            queued, passes = await count("clip_queue_seconds"), await count("clip_inference_seconds")
            body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [8], "data": images}]}
            task = asyncio.create_task(client.post("/v2/models/clip-image/infer", json=body))
            while await count("clip_queue_seconds") < queued + 8:  # the batch is handed to its pass
                assert not task.done(), (await task).text
                await asyncio.sleep(0.01)
            for _ in range(5):
                assert (await client.get("/v2/health/ready")).status_code == 200
            assert await count("clip_inference_seconds") == passes, "the pass ended before readiness answered"
            assert (await task).status_code == 200

    asyncio.run(scenario())
