"""Token ids as numpy arrays, whichever tokenizer made them: open_clip's (torch tensors) or the
engine bundle's own (`predictors.bpe`, numpy). Nothing here imports torch."""

from __future__ import annotations

from typing import Any

import numpy as np


def token_ids(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """`tokenizer(texts)` as an int64 array [len(texts), context] (a CPU tensor is viewed, not copied)."""
    return np.asarray(tokenizer(texts), dtype=np.int64)


def pad_id(tokenizer: Any) -> int:
    """The id that pads `tokenizer`'s rows (0 for CLIP's tokenizers)."""
    inner = getattr(tokenizer, "tokenizer", tokenizer)  # open_clip wraps Hugging Face tokenizers
    return getattr(inner, "pad_token_id", None) or 0


def token_length(ids: Any, pad: int = 0) -> int:
    """Index one past the last non-padding token of any row of `ids` [batch, context] (at least 1)."""
    used = np.flatnonzero((np.asarray(ids) != pad).any(axis=0))
    return int(used[-1]) + 1 if len(used) else 1


def token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    """How many tokens of each text the model reads: its tokenizer's ids that are not padding, start
    and end tokens included, after truncation to the context length."""
    return [int(n) for n in (token_ids(tokenizer, texts) != pad_id(tokenizer)).sum(axis=1)]
