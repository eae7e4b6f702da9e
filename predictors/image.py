"""`clip-image`: CLIP image embeddings over the Open Inference Protocol (KServe v2, REST and gRPC).

Run:  python -m predictors.image --model_dir DIR       (HTTP :8001, gRPC :9001; see --help)

Input `image`, BYTES [N] (N <= --max_items, default 64), one encoded image file per element (JPEG, PNG,
WebP, GIF first frame, BMP, TIFF): base64 text in JSON, raw bytes over gRPC or the binary extension.
Output `embedding`, FP32 [N, D], L2-normalised. Images over --max_image_pixels (CLIP_MAX_IMAGE_PIXELS,
default 40 000 000) are refused from their header, before decoding.

    curl -s localhost:8001/v2/models/clip-image/infer -H 'content-type: application/json' -d \
      '{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                    "data": ["'"$(base64 -w0 cat.jpg)"'"]}]}'
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from PIL import Image

from .model import ClipModel
from .preprocess import decode_image
from .server import run


def _image_bytes(element: Any, index: int) -> bytes:
    if isinstance(element, bytes | bytearray):
        return bytes(element)
    if isinstance(element, str):
        encoded = element.split(",", 1)[1] if element.startswith("data:") else element
        try:
            return base64.b64decode("".join(encoded.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"image[{index}] is not valid base64 (JSON elements must be base64)") from None
    raise InvalidInput(f"image[{index}] must be a base64 string or bytes, got {type(element).__name__}")


class ClipImageModel(ClipModel[np.ndarray]):
    """Encodes images with the loaded model's own open_clip preprocessing (a bundle's: the same steps
    rebuilt from its config, `predictors.pixels`)."""

    input_name = "image"

    @cached_property
    def min_decode_side(self) -> int:
        """Big images are decoded at reduced scale, down to twice the model's input: preprocess.py."""
        return 2 * max(self.loaded.image_size)

    @cached_property
    def transform(self) -> Callable[[Image.Image], np.ndarray]:
        """The model's own open_clip transform, its tensor steps on numpy (see predictors.imagetensor);
        a bundle's preprocessing is numpy already."""
        if self.loaded.model is None:
            return self.loaded.preprocess
        from .imagetensor import model_transform

        return model_transform(self.loaded.preprocess)

    def read_from_model(self) -> None:
        self.min_decode_side  # noqa: B018 (cached now: the torch model may be freed after load)

    def warmup_items(self) -> list[np.ndarray]:
        return [self.transform(Image.new("RGB", (64, 64), (127, 127, 127)))]

    def _prepare_sync(self, elements: list[Any]) -> list[np.ndarray]:
        limit = self.settings.max_image_pixels
        return [
            self.transform(decode_image(_image_bytes(e, i), limit, i, self.min_decode_side))
            for i, e in enumerate(elements)
        ]

    async def prepare(self, elements: list[Any]) -> list[np.ndarray]:
        return await asyncio.get_running_loop().run_in_executor(None, self._prepare_sync, elements)

    def encode(self, items: list[np.ndarray], alone: bool) -> np.ndarray:
        return self.tower.encode(np.stack(items), alone)

    def limits(self) -> dict[str, int]:
        return {"max_image_pixels": self.settings.max_image_pixels}


def main() -> None:
    run("image", ClipImageModel)


if __name__ == "__main__":
    main()
