"""fp32 linear layers on oneDNN instead of the BLAS that torch's CPU build links (MKL).

MKL chooses its kernels by CPU vendor: on AMD it leaves AVX-512 unused, and a CLIP tower, which
spends almost all of its time in linear layers, runs far slower there than on oneDNN (also in every
torch CPU build) on the same cores, with the same embeddings to float precision (the measurements are
in bench/results/predictor-measurements.md; tests/predictors/test_onednn.py checks the parity).

`use_onednn(model)` re-classes every `nn.Linear` and `nn.MultiheadAttention` in place: parameters,
state dict and `isinstance` stay as they were; only `forward` changes, and it takes torch's own path
for any call it cannot serve the same way (other dtypes or devices, cross-attention, boolean or
per-head masks, key padding masks, attention weights asked for, dropout while training).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def available() -> bool:
    """Whether this torch build has oneDNN and its fused linear operator."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        # A private operator, checked against torch==2.14.1 (the fused linear of its oneDNN backend).
        torch.ops.mkldnn._linear_pointwise  # noqa: B018 (looked up, not called)
    except (AttributeError, RuntimeError):
        return False
    return True


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    # Private operator, checked against torch==2.14.1: (input, weight, bias, attr, scalars, algorithm).
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _fits(x: Tensor, weight: Tensor) -> bool:
    return x.dtype == weight.dtype == torch.float32 and x.device.type == weight.device.type == "cpu"


def serves(
    mha: nn.MultiheadAttention,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    need_weights: bool,
    attn_mask: Tensor | None,
    is_causal: bool,
) -> bool:
    """Whether this call of `mha` is batch-first self-attention that its packed input projection,
    `scaled_dot_product_attention` and its output projection answer exactly as `mha` itself does."""
    return (
        key is query
        and value is query
        and key_padding_mask is None
        and not need_weights
        and not is_causal
        and (attn_mask is None or (attn_mask.dim() == 2 and attn_mask.is_floating_point()))
        and mha.batch_first
        # `_qkv_same_embed_dim` is private, checked against torch==2.14.1: one packed in_proj_weight.
        and mha._qkv_same_embed_dim
        and mha.bias_k is None
        and not mha.add_zero_attn
        and not (mha.training and mha.dropout > 0)
        and query.dim() == 3
    )


class OneDnnLinear(nn.Linear):
    """`nn.Linear` whose fp32 CPU forward runs on oneDNN."""

    def forward(self, input: Tensor) -> Tensor:
        if not _fits(input, self.weight):
            return super().forward(input)
        return _linear(input, self.weight, self.bias)


class OneDnnSelfAttention(nn.MultiheadAttention):
    """`nn.MultiheadAttention` whose batch-first fp32 CPU self-attention runs its projections on oneDNN."""

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        served = serves(self, query, key, value, key_padding_mask, need_weights, attn_mask, is_causal)
        served = served and _fits(query, self.in_proj_weight)
        if not served:
            return super().forward(
                query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal
            )
        n, length, width = query.shape
        qkv = _linear(query, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, self.num_heads, width // self.num_heads).permute(2, 0, 3, 1, 4)
        # A float mask is added to the scores, as in nn.MultiheadAttention.
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(n, length, width)
        return _linear(out, self.out_proj.weight, self.out_proj.bias), None


def use_onednn(model: nn.Module) -> int:
    """Re-class `model`'s linear and attention layers in place; returns how many were changed."""
    changed = 0
    for module in model.modules():
        new: Any = None
        if type(module) is nn.MultiheadAttention:
            new = OneDnnSelfAttention
        elif type(module) is nn.Linear:  # subclasses may have a forward of their own
            new = OneDnnLinear
        if new is not None:
            module.__class__ = new
            changed += 1
    return changed
