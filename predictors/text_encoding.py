"""Text encoding at the batch's real token length instead of the full context.

open_clip's `encode_text` always runs all `context_length` positions. In CLIP's text tower a causal mask
keeps every position blind to the padding after it, and the embedding is pooled at the EOT token
(argmax/eos), so slicing tokens, positional embedding and mask to the longest sequence in the batch
gives the same embedding at a fraction of the cost. Towers where that is not exact (no causal mask,
pooling at a fixed position, Hugging Face text towers, `CustomTextCLIP`) use open_clip's own path.
"""

from __future__ import annotations

import torch
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool

from .tokens import token_length

EXACT_POOLING = ("argmax", "eos")


def can_trim(model: torch.nn.Module) -> bool:
    """Whether slicing to the real token length gives exactly open_clip's embeddings for `model`."""
    return (
        type(model) is CLIP
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", None) in EXACT_POOLING
        and isinstance(getattr(model, "positional_embedding", None), torch.Tensor)
    )


def encode_text(model: torch.nn.Module, tokens: torch.Tensor, trim: bool) -> torch.Tensor:
    """Text features (not normalised) of `tokens` ([batch, context] token ids), as `model.encode_text`."""
    if not trim:
        return model.encode_text(tokens)  # type: ignore[operator]
    return encode_at_length(model, tokens[:, : token_length(tokens)])


def encode_at_length(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Text features of `tokens` already cut to their length ([batch, length] token ids, `length` at most
    the context), for a model where `can_trim`. The length is read from the ids' shape, so a traced
    export keeps it a dynamic axis."""
    assert isinstance(model, CLIP)
    length = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
    return x
