"""The `Server-Timing` header: the time a request spent in each predictor."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Timings:
    """Durations by name (`image`, `text`), sent back as `server-timing: image;dur=<ms>, ...`."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    async def time(self, name: str, call: Awaitable[T]) -> T:
        """Await `call` and record how long it took under `name`, whether it succeeded or not."""
        start = time.perf_counter()
        try:
            return await call
        finally:
            self.ms[name] = (time.perf_counter() - start) * 1000

    def header(self) -> dict[str, str]:
        return {"server-timing": ", ".join(f"{n};dur={ms:.1f}" for n, ms in self.ms.items())}
