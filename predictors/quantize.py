"""int8 CLIP towers for `--precision int8` on a CPU: faster linear layers, slightly different embeddings.

Dynamic quantization stores the weights of the linear layers as 8-bit integers and quantizes each
activation on the fly, per pass, so no calibration data is needed. The embeddings are close to fp32
(cosine near 1) but not equal, so int8 is a trade-off a user asks for, never the default; the
measurements are in bench/results/int8-*.md.

- `quantize_torch(model)`: torch's dynamic quantization (fbgemm kernels) of the linear layers of
  open_clip's transformer blocks. `nn.MultiheadAttention` keeps its input projection as a raw parameter
  and its output projection as a class torch does not quantize, so each block's attention is first
  replaced by `LinearSelfAttention`, whose two projections are plain `nn.Linear` layers that quantize.
  Layers outside transformer blocks (convolutions, attention pooling that reads weights directly,
  projections stored as parameters) stay fp32.
- `quantize_onnx(src, dst)`: ONNX Runtime's dynamic quantization of an fp32 ONNX tower. Weights are
  unsigned 8-bit by default: with signed weights, ONNX Runtime's AVX2 kernels (CPUs without VNNI)
  multiply in saturating 16-bit steps and lose accuracy; unsigned weights take the exact path there.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from open_clip.transformer import ResidualAttentionBlock
from torch import Tensor, nn


class LinearSelfAttention(nn.Module):
    """The self-attention of an `nn.MultiheadAttention`, with both projections as `nn.Linear` layers.

    It serves the calls open_clip's transformer blocks make (query, key and value the same tensor, no
    key padding mask, no attention weights) and refuses any other call rather than answer it wrong. Its
    projections hold the very parameters of `mha` (no copy): quantizing or exporting it reads them.
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("only packed self-attention projections without bias_k/zero attention")
        width = mha.embed_dim
        self.num_heads = mha.num_heads
        self.batch_first = mha.batch_first
        # made on the meta device (no memory), then given mha's own parameters
        self.in_proj = nn.Linear(width, 3 * width, bias=mha.in_proj_bias is not None, device="meta")
        self.out_proj = nn.Linear(width, width, bias=mha.out_proj.bias is not None, device="meta")
        self.in_proj.weight = mha.in_proj_weight
        self.in_proj.bias = mha.in_proj_bias
        self.out_proj.weight = mha.out_proj.weight
        self.out_proj.bias = mha.out_proj.bias

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
    ) -> tuple[Tensor, None]:
        if key is not query or value is not query or key_padding_mask is not None or is_causal:
            raise NotImplementedError("LinearSelfAttention serves self-attention without padding masks only")
        x = query if self.batch_first else query.transpose(0, 1)
        n, length, width = x.shape
        qkv = self.in_proj(x).view(n, length, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            # nn.MultiheadAttention masks where True; scaled_dot_product_attention attends where True.
            attn_mask = torch.zeros(attn_mask.shape, dtype=q.dtype).masked_fill(attn_mask, float("-inf"))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, width))
        return (out if self.batch_first else out.transpose(0, 1)), None


def _blocks(model: nn.Module) -> list[ResidualAttentionBlock]:
    return [m for m in model.modules() if isinstance(m, ResidualAttentionBlock)]


def swap_attention(model: nn.Module) -> nn.Module:
    """Replace the self-attention of `model`'s transformer blocks by `LinearSelfAttention` in place."""
    for block in _blocks(model):
        if isinstance(block.attn, nn.MultiheadAttention) and not hasattr(block, "ln_1_kv"):
            block.attn = LinearSelfAttention(block.attn)
    return model


def quantize_torch(model: nn.Module, *, attention: bool = True) -> nn.Module:
    """Quantize the linear layers of `model`'s transformer blocks to int8 in place; returns `model`.

    With `attention=False` only the MLP layers are quantized and the attention projections stay fp32
    (torch's `nn.MultiheadAttention`), for comparison.

    Call it on an fp32 CPU model in eval mode whose layers are torch's own (not re-classed for oneDNN:
    int8 replaces that kernel choice). A model without open_clip transformer blocks is returned as it is.
    """
    for block in _blocks(swap_attention(model) if attention else model):
        with warnings.catch_warnings():
            # torch announces that eager quantization moves to torchao; the kernels are the same fbgemm ones.
            warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated", DeprecationWarning)
            warnings.filterwarnings(
                "ignore", "torch.quantize_per_tensor, torch.quantize_per_channel", UserWarning
            )
            torch.ao.quantization.quantize_dynamic(block, {nn.Linear}, dtype=torch.qint8, inplace=True)
        # open_clip reads the weight dtype of `mlp.c_fc` for its casts; this attribute is its own hook
        # for int8 layers.
        block.mlp.c_fc.int8_original_dtype = torch.float32
    return model


def quantize_onnx(src: Path, dst: Path, *, signed_weights: bool = False, per_channel: bool = False) -> Path:
    """Write an int8 copy of the fp32 ONNX model `src` at `dst` (dynamic axes kept); returns `dst`.

    Every matrix multiply with a constant weight, the embedding lookups and the convolutions are
    quantized; activations are quantized per pass, so the batch and sequence axes stay dynamic.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QInt8 if signed_weights else QuantType.QUInt8
    quantize_dynamic(Path(src), Path(dst), weight_type=weight_type, per_channel=per_channel)
    return Path(dst)
