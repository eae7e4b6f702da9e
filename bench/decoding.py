"""Reduced-scale decoding of big JPEGs (PIL draft mode): its speed-up and its embedding cosine."""

from __future__ import annotations

import io
import statistics
import time
from typing import TYPE_CHECKING, Any

from bench.payloads import jpeg
from predictors.preprocess import decode_image

if TYPE_CHECKING:
    from bench.engines import Towers

LIMIT = 40_000_000  # pixels a decoded image may have


def reduced_decoding(towers: Towers, min_side: int, repeats: int) -> dict[str, Any]:
    """Decode + preprocess of 12-megapixel JPEGs with and without reduced-scale decoding."""
    from PIL import Image

    from bench.pairs import images

    files = []
    for seed in range(3):
        small = Image.open(io.BytesIO(jpeg(100 + seed, (1000, 750))))
        buf = io.BytesIO()
        small.resize((4000, 3000), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        files.append(buf.getvalue())

    def timed(side: int | None) -> float:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for f in files:
                towers.loaded.preprocess(decode_image(f, LIMIT, 0, side))
            runs.append((time.perf_counter() - started) / len(files))
        return statistics.median(runs)

    full, reduced = timed(None), timed(min_side)
    cosines = (images(towers, files, min_side) * images(towers, files, None)).sum(axis=-1)
    return {
        "image": "4000x3000 JPEG q90",
        "full_decode_ms": full * 1000,
        "reduced_decode_ms": reduced * 1000,
        "speedup": full / reduced,
        "min_cosine": float(cosines.min()),
    }
