"""Text embeddings remembered by the gateway: zero-shot labels are encoded once, not once per image.

A bounded LRU keyed by the text predictor's model identity (`arch`, `pretrained`, `embed_dim`,
`logit_scale`, as each infer response reports them) and the exact text. It lives in the gateway, not
in the text predictor, because a request whose texts all hit skips the whole text hop (HTTP, JSON,
queueing), not only the forward pass. A predictor that reports no identity is never cached.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from typing import Any

from gateway.metrics import Metrics
from gateway.v2wire import InferResult

IDENTITY_KEYS = ("arch", "pretrained", "embed_dim", "logit_scale")
Identity = tuple[Any, ...]


def model_identity(parameters: dict[str, Any]) -> Identity | None:
    """The model identity in a response's parameters, or None when the predictor does not report it."""
    values = tuple(parameters.get(k) for k in IDENTITY_KEYS)
    return None if any(v is None for v in values) else values


class TextCache:
    """Bounded LRU of (model identity, text) -> embedding, stored as float64 (exactly what was parsed)."""

    def __init__(self, max_entries: int, metrics: Metrics) -> None:
        self.max_entries = max_entries
        self.metrics = metrics
        self.identity: Identity | None = None  # the text model's, as last reported
        self.parameters: dict[str, Any] = {}  # that model's response parameters, for answers from here
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

    def store(self, texts: list[str], fetched: InferResult) -> None:
        """Remember the rows the predictor sent for `texts`, under the identity it reported."""
        identity = model_identity(fetched.parameters)
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
