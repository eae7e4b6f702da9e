"""Encoding text at the batch's real token length equals open_clip's full-context encoding."""

from __future__ import annotations

import copy
from typing import Any

import open_clip
import pytest
import torch

from predictors.text_encoding import can_trim, encode_text, token_length
from tests.support.models import TINY_VIT

TEXTS = ["a", "a photo of a cat", "two red squares and a blue circle on a white table", "word " * 40]


def build(text_overrides: dict[str, Any] | None = None, seed: int = 0) -> torch.nn.Module:
    cfg = copy.deepcopy(TINY_VIT)
    cfg["text_cfg"].update(text_overrides or {})
    torch.manual_seed(seed)
    return open_clip.CLIP(**cfg).eval()


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@pytest.mark.parametrize("texts", [TEXTS[:1], TEXTS[:2], TEXTS[:3], TEXTS, TEXTS[::-1]])
def test_trimmed_equals_full_context_on_tiny_model(texts: list[str]) -> None:
    model = build()
    tokens = open_clip.get_tokenizer("ViT-B-32", context_length=16)(texts)
    assert can_trim(model)
    with torch.inference_mode():
        full = model.encode_text(tokens)
        trimmed = encode_text(model, tokens, trim=True)
    assert cosines(trimmed, full).min() >= 0.99999
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-4)


def test_token_length_is_the_longest_real_sequence() -> None:
    tokens = open_clip.get_tokenizer("ViT-B-32", context_length=16)(["a cat", "word " * 40])
    assert token_length(tokens[:1]) == 4  # start, "a", "cat", end
    assert token_length(tokens) == 16  # truncated to the context, end token kept


@pytest.mark.parametrize(
    ("overrides", "why"),
    [({"no_causal_mask": True}, "no causal mask"), ({"pool_type": "last"}, "pooled at a fixed position")],
)
def test_towers_where_trimming_is_not_exact_use_full_context(overrides: dict[str, Any], why: str) -> None:
    model = build(overrides)
    assert not can_trim(model), why
    tokens = open_clip.get_tokenizer("ViT-B-32", context_length=16)(TEXTS)
    with torch.inference_mode():
        torch.testing.assert_close(encode_text(model, tokens, trim=False), model.encode_text(tokens))


def test_custom_text_clip_is_not_trimmed() -> None:
    cfg = copy.deepcopy(TINY_VIT)
    model = open_clip.CustomTextCLIP(**cfg).eval()
    assert not can_trim(model)
