"""Text embeddings remembered by the gateway: zero-shot labels are encoded once, not once per image.

A bounded LRU keyed by the text predictor's model identity (`arch`, `pretrained`, `embed_dim`,
`logit_scale`, as each infer response reports them) and the exact text. It lives in the gateway, not
in the text predictor, because a request whose texts all hit skips the whole text hop (HTTP, JSON,
queueing), not only the forward pass. A predictor that reports no identity is never cached.

A request whose texts all hit makes no text call, so it cannot see a model swap by itself: `confirm`
compares the cached identity with the one the image predictor reported for the same request and
re-encodes the texts on a mismatch.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from gateway.metrics import Metrics
from gateway.oip import Embeddings
from gateway.textbatch import TextBatcher

IDENTITY_KEYS = ("arch", "pretrained", "embed_dim", "logit_scale")
Identity = tuple[Any, ...]


def identity_of(parameters: dict[str, Any]) -> Identity | None:
    """The model identity in a response's parameters, or None when the predictor does not report it."""
    values = tuple(parameters.get(k) for k in IDENTITY_KEYS)
    return None if any(v is None for v in values) else values


@dataclass(frozen=True)
class TextResult:
    """Text embeddings for one request, and whether none of them needed the predictor."""

    embeddings: Embeddings
    all_cached: bool


class TextCache:
    """Bounded LRU of (model identity, text) -> embedding, stored as float64 (exactly what was parsed)."""

    def __init__(self, max_entries: int, metrics: Metrics) -> None:
        self.max_entries = max_entries
        self.metrics = metrics
        self.identity: Identity | None = None  # the text model's, as last reported
        self.parameters: dict[str, Any] = {}
        self._rows: OrderedDict[tuple[Identity, str], array[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, texts: list[str]) -> list[list[float] | None]:
        """Cached rows of `texts` under the current identity (None where missing); counts hits/misses."""
        rows: list[list[float] | None] = []
        for text in texts:
            row = None if self.identity is None else self._rows.get((self.identity, text))
            if row is not None:
                self._rows.move_to_end((self.identity, text))  # type: ignore[arg-type]
            rows.append(None if row is None else row.tolist())
        hits = sum(r is not None for r in rows)
        self.metrics.text_cache_hits.inc(hits)
        self.metrics.text_cache_misses.inc(len(rows) - hits)
        return rows

    def store(self, texts: list[str], fetched: Embeddings) -> None:
        identity = identity_of(fetched.parameters)
        if identity is None or self.max_entries == 0:
            return
        if identity != self.identity:
            self._rows.clear()  # a different model: the old entries can never match again
            self.identity, self.parameters = identity, dict(fetched.parameters)
        for text, row in zip(texts, fetched.rows, strict=True):
            self._rows[(identity, text)] = array("d", row)
            self._rows.move_to_end((identity, text))
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)
        self.metrics.text_cache_entries.set(len(self._rows))


class CachedTextEncoder:
    """The text predictor behind a `TextCache`: only texts not cached are sent."""

    def __init__(self, batcher: TextBatcher, cache: TextCache) -> None:
        self.batcher = batcher
        self.cache = cache

    async def embed(
        self, texts: list[str], request_id: str, needed_by: asyncio.Future[Any] | None = None
    ) -> TextResult:
        """Embeddings of `texts`; those not cached may wait for company until `needed_by` is done
        (see `TextBatcher.fetch`)."""
        if self.cache.max_entries == 0:
            return TextResult(await self.batcher.fetch(texts, request_id, needed_by), all_cached=False)
        identity = self.cache.identity
        rows = self.cache.lookup(texts)
        missing = [i for i, row in enumerate(rows) if row is None]
        if not missing:
            return TextResult(Embeddings(rows, dict(self.cache.parameters)), all_cached=True)  # type: ignore[arg-type]
        fetched = await self.batcher.fetch([texts[i] for i in missing], request_id, needed_by)
        self.cache.store([texts[i] for i in missing], fetched)
        if len(missing) < len(texts) and identity_of(fetched.parameters) != identity:
            # The model changed under the hits: encode every text with the new one.
            return TextResult(await self.batcher.fetch(texts, request_id), all_cached=False)
        for i, row in zip(missing, fetched.rows, strict=True):
            rows[i] = row
        return TextResult(Embeddings(rows, fetched.parameters), all_cached=False)  # type: ignore[arg-type]

    async def confirm(
        self, result: TextResult, image: Embeddings, texts: list[str], request_id: str
    ) -> Embeddings:
        """`result`'s embeddings, re-encoded if they all came from the cache under another model than
        the one the image predictor just reported (the model was swapped behind the same URL)."""
        if not result.all_cached or identity_of(image.parameters) == identity_of(
            result.embeddings.parameters
        ):
            return result.embeddings
        fetched = await self.batcher.fetch(texts, request_id)
        self.cache.store(texts, fetched)
        return fetched
