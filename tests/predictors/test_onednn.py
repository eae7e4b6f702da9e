"""oneDNN linear layers give open_clip's embeddings, and hand every call they cannot serve to torch."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import open_clip
import pytest
import torch
from torch import nn

from devtools.procs import Program
from predictors import onednn
from predictors.text_encoding import encode_text
from tests.support.models import TINY_VIT
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import Reference, assert_same_embeddings

TEXTS = ["a", "a photo of a cat", "two red squares and a blue circle on a white table", "word " * 40]


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return nn.functional.cosine_similarity(a, b, dim=-1)


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    stock = open_clip.CLIP(**copy.deepcopy(TINY_VIT)).eval()
    fast = copy.deepcopy(stock)
    assert onednn.available()
    onednn.use_onednn(fast)
    return stock, fast


def test_every_linear_and_attention_layer_moves_and_keeps_its_parameters(
    models: tuple[nn.Module, nn.Module],
) -> None:
    stock, fast = models
    kinds = [type(m) for m in fast.modules()]
    assert nn.MultiheadAttention not in kinds and nn.Linear not in kinds
    linear = sum(type(m) is nn.Linear for m in stock.modules())
    attention = sum(type(m) is nn.MultiheadAttention for m in stock.modules())
    assert kinds.count(onednn.OneDnnLinear) == linear > 0
    assert kinds.count(onednn.OneDnnSelfAttention) == attention > 0
    assert all(isinstance(m, nn.Linear) for m in fast.modules() if isinstance(m, onednn.OneDnnLinear))
    assert stock.state_dict().keys() == fast.state_dict().keys()
    for name, tensor in stock.state_dict().items():
        assert torch.equal(tensor, fast.state_dict()[name]), name
    assert onednn.use_onednn(fast) == 0  # a second call changes nothing


@pytest.mark.parametrize("batch", [1, 3])
def test_image_embeddings_match_torch(models: tuple[nn.Module, nn.Module], batch: int) -> None:
    stock, fast = models
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        want, got = stock.encode_image(images), fast.encode_image(images)
    assert cosines(got, want).min() >= 0.99999
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("trim", [True, False])
def test_text_embeddings_match_torch_with_the_causal_mask(
    models: tuple[nn.Module, nn.Module], trim: bool
) -> None:
    stock, fast = models
    tokens = open_clip.get_tokenizer("ViT-B-32", context_length=16)(TEXTS)
    with torch.inference_mode():
        want, got = stock.encode_text(tokens), encode_text(fast, tokens, trim)
    assert cosines(got, want).min() >= 0.99999
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def _attention_pair(**kwargs: Any) -> tuple[nn.MultiheadAttention, nn.MultiheadAttention]:
    torch.manual_seed(1)
    stock = nn.MultiheadAttention(16, 2, batch_first=kwargs.pop("batch_first", True), **kwargs).eval()
    fast = copy.deepcopy(stock)
    assert onednn.use_onednn(fast) == 1  # its out_proj is read by the layer, never called
    return stock, fast


x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(2))
other = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(3))
causal = torch.full((5, 5), float("-inf")).triu(1)
no_weights = {"need_weights": False}
# case: (layer kwargs, cross-attention, dtype, call kwargs, served on oneDNN)
CALLS: dict[str, tuple[dict[str, Any], bool, torch.dtype, dict[str, Any], bool]] = {
    "float causal mask": ({}, False, torch.float32, {"attn_mask": causal, **no_weights}, True),
    "no mask": ({}, False, torch.float32, no_weights, True),
    "cross-attention": ({}, True, torch.float32, no_weights, False),
    "attention weights asked for": ({}, False, torch.float32, {"need_weights": True}, False),
    "boolean mask": ({}, False, torch.float32, {"attn_mask": causal.isinf(), **no_weights}, False),
    "key padding mask": (
        {},
        False,
        torch.float32,
        {"key_padding_mask": torch.tensor([[False] * 4 + [True]] * 2), **no_weights},
        False,
    ),
    "sequence first": ({"batch_first": False}, False, torch.float32, no_weights, False),
    "float64": ({}, False, torch.float64, no_weights, False),
}


@pytest.mark.parametrize("case", CALLS)
def test_attention_answers_as_torch_for_every_call(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layer_kwargs, cross, dtype, call_kwargs, served = CALLS[case]
    stock, fast = _attention_pair(**layer_kwargs)
    stock, fast = stock.to(dtype), fast.to(dtype)
    query, kv = x.to(dtype), other.to(dtype)
    key = kv if cross else query
    calls: list[tuple[Any, ...]] = []
    real = onednn._linear

    def counted(*args: Any) -> torch.Tensor:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(onednn, "_linear", counted)
    with torch.inference_mode():
        want, got = stock(query, key, key, **call_kwargs), fast(query, key, key, **call_kwargs)
    assert bool(calls) == served
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-4)
    assert (got[1] is None) == (want[1] is None)


@process_fixture(scope="module")
def torch_kernels_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_dir, log_dir, "--engine", "torch", "--cpu_kernels", "torch")


def test_torch_kernels_can_be_chosen(torch_kernels_server: Program, tiny_ref: Reference) -> None:
    base = f"http://127.0.0.1:{torch_kernels_server.ports['http']}/v2/models/clip-text"
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}]}
    r = httpx.post(f"{base}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert_same_embeddings(np.array(out["data"]).reshape(out["shape"]), tiny_ref.texts(TEXTS), 0.99999)
    params = httpx.get(f"{base}/config").json()["parameters"]
    assert (params["engine"], params["cpu_kernels"]) == ("torch", "torch")
