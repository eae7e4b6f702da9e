"""Small test images and texts, and the in-process open_clip reference the servers must match."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def distinct_image(i: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """An RGB image that differs from distinct_image(j) for every j != i."""
    rng = np.random.default_rng(i)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def sample_images() -> list[bytes]:
    """A PNG, a JPEG and a WebP of different content and sizes."""
    return [
        encode(distinct_image(1), "PNG"),
        encode(distinct_image(2, (64, 32)), "JPEG", quality=90),
        encode(distinct_image(3, (30, 50)), "WEBP", lossless=True),
    ]


TEXTS = ["a red square", "a photo of a dog on the beach", "word " * 200]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but whose pixel data is a 1x1 image's."""
    tiny = encode(Image.new("RGB", (1, 1)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return tiny[:8] + chunk + tiny[33:]


@dataclass
class Reference:
    """open_clip's own model, preprocessing and tokenizer for a model directory, in this process."""

    model_dir: Path

    def __post_init__(self) -> None:
        import open_clip

        name = f"local-dir:{self.model_dir}"
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(name)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(name)
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    def images(self, files: list[bytes]) -> np.ndarray:
        import torch

        batch = torch.stack([self.preprocess(Image.open(io.BytesIO(f))) for f in files])
        with torch.inference_mode():
            return self.model.encode_image(batch, normalize=True).numpy()

    def texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(texts), normalize=True).numpy()


def assert_same_embeddings(got: np.ndarray, want: np.ndarray, min_cosine: float = 0.9999) -> None:
    """Same shape, every row L2-normalised, each row's cosine with its reference >= min_cosine."""
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert cosines.min() >= min_cosine, cosines


def exif_rotated_png(img: Image.Image) -> bytes:
    """`img` stored rotated by 90 degrees, with EXIF orientation 8 saying how to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotate 90 CW to display
    return encode(img.transpose(Image.Transpose.ROTATE_270), "PNG", exif=exif)


def rgba_on_white(img: Image.Image) -> tuple[bytes, Image.Image]:
    """`img` with its left half fully transparent, as PNG, and the expected picture on white."""
    alpha = np.full((img.height, img.width), 255, dtype=np.uint8)
    alpha[:, : img.width // 2] = 0
    rgba = img.copy()
    rgba.putalpha(Image.fromarray(alpha, "L"))
    expected = np.asarray(img).copy()
    expected[:, : img.width // 2] = 255
    return encode(rgba, "PNG"), Image.fromarray(expected, "RGB")
