"""The demo model through the real gateway and predictors: the right caption wins."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from demo import shapes
from tests.support.stack import LocalStack


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def compare(base: str, image: bytes, texts: list[str]) -> dict:
    files = [("image", ("shape.png", image, "image/png"))]
    response = httpx.post(f"{base}/compare/", files=files, data={"text": texts}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_zero_shot_ranks_the_right_caption_first(stack: LocalStack) -> None:
    captions = shapes.captions()
    held_out = shapes.heldout(n_per_class=2, seed=7)
    assert len(held_out) >= 2 * 24
    correct = 0
    for colour, shape, image in held_out:
        body = compare(stack.gateway_url, png(image), captions)
        assert set(body) == {"similarities", "probabilities"}
        assert len(body["similarities"]) == len(captions)
        assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        best = max(range(len(captions)), key=body["probabilities"].__getitem__)
        correct += captions[best] == shapes.caption(colour, shape)
    assert correct / len(held_out) >= 0.95, f"{correct}/{len(held_out)} ranked the right caption first"


def test_one_caption_gives_a_similarity_and_the_match_scores_higher(stack: LocalStack) -> None:
    colour, shape, image = shapes.heldout(n_per_class=1, seed=11)[0]
    other_colour = next(c for c in shapes.COLOURS if c != colour)
    match = compare(stack.gateway_url, png(image), [shapes.caption(colour, shape)])
    mismatch = compare(stack.gateway_url, png(image), [shapes.caption(other_colour, shape)])
    assert set(match) == {"similarity"} and set(mismatch) == {"similarity"}
    assert -1.0 <= mismatch["similarity"] < match["similarity"] <= 1.0
