"""Readiness of both predictors, checked with a short timeout and cached so probes do not flood them."""

from __future__ import annotations

import asyncio
import time

from gateway.predictor import PredictorClient


class Readiness:
    """`check()` answers {predictor: None when ready, else why not}, at most one look per `cache_s`."""

    def __init__(self, predictors: list[PredictorClient], cache_s: float, timeout_s: float) -> None:
        self.predictors = predictors
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._checked_at = -float("inf")
        self._result: dict[str, str | None] = {}

    def _fresh(self) -> bool:
        return time.monotonic() - self._checked_at < self.cache_s

    async def check(self) -> dict[str, str | None]:
        if self._fresh():
            return self._result
        async with self._lock:  # concurrent probes share one look
            if not self._fresh():
                reasons = await asyncio.gather(*(p.ready(self.timeout_s) for p in self.predictors))
                self._result = {p.name: r for p, r in zip(self.predictors, reasons, strict=True)}
                self._checked_at = time.monotonic()
        return self._result
