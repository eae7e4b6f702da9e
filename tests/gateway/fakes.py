"""A fake pair of v2 predictors behind an httpx.MockTransport, for the gateway's unit tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
        payload = json.loads(request.content)
        data = payload["inputs"][0]["data"]
        seeds = [base64.b64decode(d) for d in data] if name == "image" else [t.encode() for t in data]
        flat = [x for s in seeds for x in vector(s)]
        return httpx.Response(
            200,
            json={
                "id": payload["id"],
                "model_name": f"clip-{name}",
                "outputs": [
                    {"name": "embedding", "datatype": "FP32", "shape": [len(seeds), DIM], "data": flat}
                ],
                "parameters": {"embed_dim": DIM, "logit_scale": self.logit_scale},
            },
        )
