"""What the benchmark sends: drawn JPEG photos, distinct short texts, zero-shot labels."""

from __future__ import annotations

import base64
import io
import itertools
import json

from demo.shapes import COLOURS, SHAPES, draw, noun_phrase

PHOTO_SIZE = (640, 480)
ZERO_SHOT_LABELS = [f"a photo of {noun_phrase(c, s)}" for c, s in zip(COLOURS * 2, SHAPES * 3, strict=False)][
    :10
]


def jpeg(seed: int, size: tuple[int, int] = PHOTO_SIZE, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    draw(COLOURS[seed % len(COLOURS)], SHAPES[seed % len(SHAPES)], seed, size).save(
        buf, "JPEG", quality=quality
    )
    return buf.getvalue()


def photos(n: int) -> list[bytes]:
    return [jpeg(seed) for seed in range(n)]


def distinct_text(i: int) -> str:
    """A short caption that no other request repeats (so no cache can help)."""
    colour, shape = COLOURS[i % len(COLOURS)], SHAPES[i // len(COLOURS) % len(SHAPES)]
    return f"a photo of {noun_phrase(colour, shape)} no. {i}"


class CompareBodies:
    """JSON bodies for POST /compare/: image i mod pool, and a distinct text or the zero-shot labels."""

    def __init__(self, images: list[bytes], zero_shot: bool) -> None:
        self.images = [base64.b64encode(i) for i in images]
        self.zero_shot = zero_shot
        self._serial = itertools.count()  # across every point: no text repeats within a run

    def __call__(self, i: int) -> bytes:
        i = next(self._serial)
        texts = ZERO_SHOT_LABELS if self.zero_shot else distinct_text(i)
        return (
            b'{"image": "'
            + self.images[i % len(self.images)]
            + b'", "text": '
            + json.dumps(texts).encode()
            + b"}"
        )

    @property
    def pairs(self) -> int:
        return len(ZERO_SHOT_LABELS) if self.zero_shot else 1
