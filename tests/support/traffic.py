"""Steady real /compare/ traffic against the gateway from a background thread, as users would send it."""

from __future__ import annotations

import base64
import io
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from types import TracebackType

import httpx

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
TEXTS = ("a red square", "a green square", "a blue square")


def png(rgb: tuple[int, int, int], size: int = 48) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "PNG")
    return buf.getvalue()


class Traffic:
    """POST /compare/ every `interval` seconds (multipart uploads and JSON in turn) until stopped.

    Records (time, status) of every answer; a transport error counts as status 0.
    """

    def __init__(self, gateway_url: str, interval: float = 0.1) -> None:
        self.url = f"{gateway_url}/compare/"
        self.interval = interval
        self.answers: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)

    def statuses(self, since: float = 0.0) -> Counter[int]:
        return Counter(status for at, status in list(self.answers) if at >= since)

    def _requests(self) -> Iterator[dict[str, object]]:
        """Multipart uploads and JSON in turn. Each request carries a text never sent before, as users'
        captions vary: a gateway that caches text embeddings still has to ask the text predictor."""
        images = [(name, png(rgb)) for name, rgb in COLOURS.items()]
        for n, (name, data) in enumerate(itertools.cycle(images)):
            fresh = f"a {name} square, caption {n}"
            if n % 2:
                yield {"json": {"image": base64.b64encode(data).decode(), "text": fresh}}
            else:
                upload = {"image": (f"{name}.png", data, "image/png")}
                yield {"files": upload, "data": {"text": [*TEXTS, fresh]}}

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for request in self._requests():
                if self._stop.is_set():
                    return
                try:
                    status = client.post(self.url, **request).status_code  # type: ignore[arg-type]
                except httpx.HTTPError:
                    status = 0
                self.answers.append((time.monotonic(), status))
                self._stop.wait(self.interval)  # pacing, not waiting for a condition
