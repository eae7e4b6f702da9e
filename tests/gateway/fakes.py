"""A fake pair of v2 predictors behind an httpx.MockTransport, for the gateway's unit tests."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

IMAGE_URL, TEXT_URL = "http://image.test", "http://text.test"
DIM = 8


def vector(seed: bytes) -> list[float]:
    """A deterministic unit vector for an input."""
    raw = [b - 127.5 for b in hashlib.sha256(seed).digest()[:DIM]]
    norm = sum(x * x for x in raw) ** 0.5
    return [x / norm for x in raw]


def png(width: int = 4, height: int = 4, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


Override = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response | None] | None]


@dataclass
class FakePredictors:
    """Answers infer and ready like the real predictors; `override[name]` replaces an answer."""

    logit_scale: float = 10.0
    delay_s: float = 0.0
    override: dict[str, Override] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, name: str, suffix: str = "/infer") -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == f"{name}.test" and r.url.path.endswith(suffix)]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = request.url.host.removesuffix(".test")
        if name in self.override:
            response = self.override[name](request)
            if inspect.isawaitable(response):
                response = await response
            if response is not None:
                return response
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.url.path.endswith("/ready"):
            return httpx.Response(200, json={"name": f"clip-{name}", "ready": True})
        header, elements = infer_request(request)
        seeds = self.seeds(name, elements)
        flat = [x for s in seeds for x in vector(s)]
        # Plain JSON, which a v2 server may answer even when asked for binary (the gateway reads both).
        return httpx.Response(
            200,
            json={
                "id": header["id"],
                "model_name": f"clip-{name}",
                "outputs": [
                    {"name": "embedding", "datatype": "FP32", "shape": [len(seeds), DIM], "data": flat}
                ],
                "parameters": {"embed_dim": DIM, "logit_scale": self.logit_scale, **self.identity()},
            },
        )

    def seeds(self, name: str, elements: list[bytes]) -> list[bytes]:
        """What each input's embedding is derived from: its bytes (a UTF-8 text, an image file)."""
        return elements

    def identity(self) -> dict[str, str]:
        """Model identity parameters the answers carry (none: a predictor that reports none)."""
        return {}


def infer_request(request: httpx.Request) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON header and the BYTES elements of an infer request sent with the binary extension."""
    assert request.headers["content-type"] == "application/octet-stream"
    length = int(request.headers["inference-header-content-length"])
    content = request.read()
    header = json.loads(content[:length])
    raw, elements = content[length:], []
    assert len(raw) == header["inputs"][0]["parameters"]["binary_data_size"]
    while raw:
        (size,) = struct.unpack("<I", raw[:4])
        elements.append(raw[4 : 4 + size])
        raw = raw[4 + size :]
    assert len(elements) == header["inputs"][0]["shape"][0]
    return header, elements
