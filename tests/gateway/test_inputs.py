"""Uploads are checked before any predictor is called: size, type, pixels, fields, texts."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.gateway.fakes import FakePredictors, png
from tests.support.gateway_clients import MakeClient

LIMIT = 50_000


@pytest.fixture
def small(make_client: MakeClient) -> TestClient:
    return make_client(
        gateway_max_image_bytes=LIMIT,
        gateway_max_image_pixels=10_000,
        gateway_max_texts=3,
        gateway_max_text_chars=20,
    )


def encoded(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "green").save(buf, fmt)
    return buf.getvalue()


def noise_png(nbytes: int) -> bytes:
    """A valid PNG just over `nbytes` (random pixels do not compress)."""
    side = int((nbytes / 3) ** 0.5) + 8
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


def error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.json().keys() == {"error"}
    for word in words:
        assert word in r.json()["error"], r.json()["error"]


def test_oversize_image_is_413(small: TestClient, fake: FakePredictors) -> None:
    big = noise_png(LIMIT)
    assert len(big) > LIMIT
    error(
        small.post("/compare/", files={"image": ("x.png", big, "image/png")}, data={"text": "a"}),
        413,
        str(LIMIT),
    )
    error(
        small.post("/compare/", json={"image": base64.b64encode(big).decode(), "text": "a"}), 413, str(LIMIT)
    )
    error(small.post("/embed/", files={"image": ("x.png", big, "image/png")}), 413)
    assert fake.requests == []


def test_declared_content_length_over_the_cap_is_refused_unread(small: TestClient, fake) -> None:
    headers = {"content-type": "application/json", "content-length": str(10**9)}
    error(small.post("/compare/", content=b"{}", headers=headers), 413, "10000000")
    assert fake.requests == []


def test_streamed_body_without_length_is_cut_at_the_cap(small: TestClient, fake) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "a", "image": "'
        for _ in range(10_000):
            yield b"A" * 1024

    r = small.post("/compare/", content=chunks(), headers={"content-type": "application/json"})
    error(r, 413, "limit")
    assert fake.requests == []


def test_too_many_pixels_is_413_from_the_header(small: TestClient, fake) -> None:
    wide = encoded("PNG", (200, 100))  # 20 000 pixels, a few hundred bytes
    error(
        small.post("/compare/", files={"image": ("x.png", wide, "image/png")}, data={"text": "a"}),
        413,
        "200x100",
        "10000",
    )
    assert fake.requests == []


def test_a_file_that_is_not_an_image_is_400(client: TestClient, fake) -> None:
    for junk in (b"%PDF-1.4 not an image", b"\x89PNG\r\n\x1a\n truncated"):
        r = client.post("/compare/", files={"image": ("x.png", junk, "image/png")}, data={"text": "a"})
        error(r, 400, "not an image")
    error(
        client.post("/compare/", files={"image": ("x.png", b"", "image/png")}, data={"text": "a"}),
        400,
        "empty",
    )
    assert fake.requests == []


def test_every_supported_format_passes_and_others_are_415(client: TestClient, fake) -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"):
        r = client.post("/embed/", files={"image": ("x", encoded(fmt), "application/octet-stream")})
        assert r.status_code == 200, (fmt, r.text)
    r = client.post("/embed/", files={"image": ("x.ico", encoded("ICO"), "image/x-icon")})
    error(r, 415, "ICO")


def test_unsupported_content_type_is_415(client: TestClient, fake) -> None:
    error(
        client.post("/compare/", content=png(), headers={"content-type": "image/png"}),
        415,
        "image/png",
        "multipart/form-data",
    )
    error(client.post("/compare/", content=b"x"), 415, "(none)")
    error(client.post("/compare/", data={"text": "a"}), 415, "x-www-form-urlencoded")
    assert fake.requests == []


def test_missing_or_mistyped_fields_are_422(client: TestClient, fake) -> None:
    b64 = base64.b64encode(png()).decode()
    error(client.post("/compare/", json={"text": "a"}), 422, "'image'")
    error(client.post("/compare/", json={"image": b64}), 422, "'text'")
    error(client.post("/compare/", json={"image": b64, "text": 3}), 422, "'text'")
    error(client.post("/compare/", json={"image": 3, "text": "a"}), 422, "'image'")
    error(client.post("/compare/", json=["a"]), 422, "object")
    error(client.post("/compare/", data={"text": "a"}, files={"other": ("o", b"o")}), 422, "'image'")
    error(client.post("/compare/", files={"image": (None, "just a string")}, data={"text": "a"}), 422, "file")
    error(client.post("/compare/", files={"image": ("x.png", png(), "image/png")}), 422, "'text'")
    error(client.post("/embed_text/", json={}), 422, "'text'")
    assert fake.requests == []


def test_bad_values_are_400(small: TestClient, fake) -> None:
    b64 = base64.b64encode(png()).decode()
    error(small.post("/compare/", json={"image": b64, "text": ""}), 400, "empty")
    error(small.post("/compare/", json={"image": b64, "text": ["a", "  "]}), 400, "text[1] is empty")
    error(small.post("/compare/", json={"image": b64, "text": []}), 400, "at least one")
    error(small.post("/compare/", json={"image": b64, "text": ["a"] * 4}), 400, "4 texts", "at most 3")
    error(small.post("/compare/", json={"image": b64, "text": "x" * 21}), 400, "21 characters")
    error(small.post("/compare/", json={"image": "not base64!!", "text": "a"}), 400, "base64")
    error(small.post("/compare/", json={"image": "data:image/png," + b64, "text": "a"}), 400, "data: URI")
    error(
        small.post("/compare/", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "not valid JSON",
    )
    error(
        small.post("/compare/", files={"image": ("x.png", png(), "image/png")}, data={"text": ["a"] * 9}),
        400,
        "up to 3 'text' values",
    )
    error(small.post("/compare/", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400)
    assert fake.requests == []


def test_deeply_nested_json_is_400(client: TestClient, fake) -> None:
    r = client.post("/compare/", content=b"[" * 100_000, headers={"content-type": "application/json"})
    error(r, 400, "nested too deeply")
    assert fake.requests == []


def test_image_base64_may_be_url_safe_or_wrapped(client: TestClient) -> None:
    image = png(9, 9, "white") + b"\xfb\xff"  # trailing bytes that encode to '+/' or '-_'
    standard = base64.b64encode(image).decode()
    assert "+" in standard or "/" in standard
    for variant in (
        standard,
        base64.urlsafe_b64encode(image).decode(),
        standard.rstrip("="),
        "\n".join(standard[i : i + 76] for i in range(0, len(standard), 76)),
    ):
        r = client.post("/embed/", json={"image": variant})
        assert r.status_code == 200, (variant, r.text)
