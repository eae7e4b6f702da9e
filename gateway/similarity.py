"""CLIP scores from embeddings: cosine similarity and zero-shot probabilities."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; the predictors send unit vectors, but fp16 rounding is divided out."""
    if len(a) != len(b):
        raise ValueError(f"embedding sizes differ: {len(a)} and {len(b)}")
    norm = math.sqrt(_dot(a, a) * _dot(b, b))
    return _dot(a, b) / norm if norm else 0.0


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(map(operator.mul, a, b))


def softmax(logits: Sequence[float]) -> list[float]:
    """Numerically stable softmax."""
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = math.fsum(exps)
    return [e / total for e in exps]


def zero_shot(similarities: Sequence[float], logit_scale: float) -> list[float]:
    """CLIP's zero-shot probabilities: softmax(logit_scale · similarity) over the texts."""
    return softmax([logit_scale * s for s in similarities])
