"""`clip-text`: CLIP text embeddings over the Open Inference Protocol (KServe v2, REST and gRPC).

Run:  python -m predictors.text --model_dir DIR        (HTTP :8002, gRPC :9002; see --help)

Input `text`, BYTES [N] (N <= --max_items, default 64), UTF-8 strings. Output `embedding`, FP32 [N, D],
L2-normalised. An empty (or blank) text, or one over --max_text_chars (CLIP_MAX_TEXT_CHARS, default
2000) characters, is refused. Texts longer than the model's context (77 tokens for OpenAI CLIP) are
truncated to it, end-of-text token kept, exactly as open_clip's tokenizer does. Each batch runs at
the length of its longest tokenized text (see `predictors.text_encoding`).

A request with the parameter `token_counts: true` gets the response parameter `token_counts`: how many
tokens of each text the model read (start and end tokens included, after truncation), as a
comma-separated string of integers (v2 parameters hold no lists).

    curl -s localhost:8002/v2/models/clip-text/infer -H 'content-type: application/json' -d \
      '{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a cat", "a dog"]}]}'
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from .model import ClipModel
from .server import run
from .tokens import token_counts, token_ids
from .v2wire import read_elements


def _text(element: Any, index: int, max_chars: int) -> str:
    if isinstance(element, bytes | bytearray):
        try:
            element = bytes(element).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"text[{index}] is not valid UTF-8") from None
    if not isinstance(element, str):
        raise InvalidInput(f"text[{index}] must be a string, got {type(element).__name__}")
    if not element.strip():
        raise InvalidInput(f"text[{index}] is empty")
    if len(element) > max_chars:
        raise InvalidInput(f"text[{index}] has {len(element)} characters, over the limit of {max_chars}")
    return element


class ClipTextModel(ClipModel[str]):
    """Encodes texts with the loaded model's own tokenizer."""

    input_name = "text"

    def warmup_items(self) -> list[str]:
        return ["a photo of a cat"]

    async def prepare(self, elements: list[Any]) -> list[str]:
        return [_text(e, i, self.settings.max_text_chars) for i, e in enumerate(elements)]

    def encode(self, items: list[str], alone: bool) -> np.ndarray:
        return self.tower.encode(token_ids(self.loaded.tokenizer, items), alone)  # at their length: tower

    def limits(self) -> dict[str, int]:
        return {"max_text_chars": self.settings.max_text_chars}

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> InferResponse:
        response = await super().predict(payload, headers)
        if isinstance(payload, InferRequest) and _asks_token_counts(payload.parameters):
            elements = read_elements(payload, self.input_name, self.settings.max_items)
            texts = [_text(e, i, self.settings.max_text_chars) for i, e in enumerate(elements)]
            counts = await asyncio.to_thread(token_counts, self.loaded.tokenizer, texts)
            parameters = dict(response.parameters or {})
            parameters["token_counts"] = ",".join(map(str, counts))
            response.parameters = parameters
        return response


def _asks_token_counts(parameters: Any) -> bool:
    """Whether the request's parameters say `token_counts: true` (a dict over REST, InferParameters
    over gRPC)."""
    if not parameters or "token_counts" not in parameters:
        return False
    value = parameters["token_counts"]
    return bool(value.bool_param) if hasattr(value, "bool_param") else value is True


def main() -> None:
    run("text", ClipTextModel)


if __name__ == "__main__":
    main()
