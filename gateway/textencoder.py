"""The gateway's text path, behind one entry: `TextEncoder.embed`.

With the request's image call (`/compare/`), a request's texts take three steps:
1. the cache (`textcache.py`): texts remembered under the text model's identity skip the predictor;
2. shared calls (`textsharing.py`): the texts not cached may wait, while the image call is under way,
   for the texts of other requests, and go to the text predictor in one call with them;
3. the model-identity check: texts that all came from the cache made no call, so they cannot see a
   model swapped behind the same URL; they are checked against the identity the image predictor
   reported for the same request, and encoded again on a mismatch. (When some texts were fetched,
   the fetched identity is checked against the cached one instead.)

Without an image call (`/embed_text/`), the texts go in one call of their own, at once: there is no
image to wait for, and they pass the cache because no image response beside them could reveal a
swapped model, so a cached answer could outlive the model that made it.
"""

from __future__ import annotations

import asyncio
from typing import cast

from gateway import v2wire
from gateway.metrics import Metrics
from gateway.predictor import PredictorClient
from gateway.textcache import TextCache, model_identity
from gateway.textsharing import ImageCallStats, SharedTextCalls
from gateway.timings import Timings
from gateway.v2wire import InferResult


class TextEncoder:
    """The text predictor as the endpoints see it: cache, shared calls and the model-identity check.

    `cache_size` texts are remembered (0: none); a shared call carries at most `call_size` texts,
    and texts wait for company at most `max_wait_s`, guided by `image_calls` (see `textsharing.py`).
    """

    def __init__(
        self,
        client: PredictorClient,
        image_calls: ImageCallStats,
        metrics: Metrics,
        *,
        cache_size: int,
        call_size: int,
        max_wait_s: float,
    ) -> None:
        self.client = client
        self.cache = TextCache(cache_size, metrics)
        self.shared = SharedTextCalls(client, image_calls, call_size, max_wait_s)

    async def embed(
        self,
        texts: list[str],
        request_id: str,
        image_call: asyncio.Future[InferResult] | None = None,
        timings: Timings | None = None,
        *,
        token_counts: bool = False,
    ) -> InferResult:
        """The embeddings of `texts`, in order. `image_call` is the same request's image predictor
        call, when there is one; `timings` records the time until the texts' embeddings were at hand
        (a wait for company included, the identity check's wait for the image not). `token_counts`
        (without `image_call` only) asks the predictor for each text's token count as well."""
        timings = timings or Timings()
        if image_call is None:
            body = v2wire.text_request(texts, request_id, token_counts)
            return await timings.time("text", self.client.infer(body, len(texts), request_id))
        result, all_cached = await timings.time("text", self._cached_or_shared(texts, request_id, image_call))
        if not all_cached:
            return result
        return await self._checked_against_image(result, texts, request_id, image_call)

    async def _cached_or_shared(
        self, texts: list[str], request_id: str, image_call: asyncio.Future[InferResult]
    ) -> tuple[InferResult, bool]:
        """The texts' embeddings, and whether they all came from the cache."""
        if self.cache.max_entries == 0:
            return await self.shared.fetch(texts, request_id, image_call), False
        identity = self.cache.identity
        rows = self.cache.lookup(texts)
        missing = [i for i, row in enumerate(rows) if row is None]
        if not missing:
            return InferResult(cast(list[list[float]], rows), dict(self.cache.parameters)), True
        fetched = await self.shared.fetch([texts[i] for i in missing], request_id, image_call)
        self.cache.store([texts[i] for i in missing], fetched)
        if len(missing) < len(texts) and model_identity(fetched.parameters) != identity:
            # The model changed under the hits: encode every text with the new one.
            return await self.shared.fetch(texts, request_id), False
        for i, row in zip(missing, fetched.rows, strict=True):
            rows[i] = row
        return InferResult(cast(list[list[float]], rows), fetched.parameters), False

    async def _checked_against_image(
        self, cached: InferResult, texts: list[str], request_id: str, image_call: asyncio.Future[InferResult]
    ) -> InferResult:
        """`cached`, or the texts encoded again when the image predictor reports another model than
        the one the cache holds (the models were swapped behind the same URLs)."""
        await asyncio.wait([image_call])
        if image_call.cancelled() or image_call.exception() is not None:
            return cached  # the request fails with the image call's error; nothing to check against
        if model_identity(image_call.result().parameters) == model_identity(cached.parameters):
            return cached
        fetched = await self.shared.fetch(texts, request_id)
        self.cache.store(texts, fetched)
        return fetched
