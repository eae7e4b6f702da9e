"""Procedurally drawn coloured shapes and their captions: the demo model's whole world.

Every image comes from one integer seed. Training draws seeds below `HELDOUT_BASE`, held-out
evaluation draws seeds at or above it, so the two sets never share an image.
"""

from __future__ import annotations

import colorsys
import math
import random

import numpy as np
from PIL import Image, ImageDraw

# Hue (degrees) of each colour; shapes are saturated, backgrounds nearly grey, so they never clash.
_HUES = {"red": 0, "orange": 30, "yellow": 57, "green": 120, "blue": 225, "purple": 280}
COLOURS: tuple[str, ...] = tuple(_HUES)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

HELDOUT_BASE = 1 << 40
_SUPERSAMPLE = 4


def noun_phrase(colour: str, shape: str) -> str:
    """E.g. "a red circle", "an orange star"."""
    if colour not in _HUES or shape not in SHAPES:
        raise ValueError(f"unknown class: {colour} {shape}")
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {shape}"


def caption(colour: str, shape: str) -> str:
    """The caption the demo model was trained on, e.g. "a photo of a red circle"."""
    return f"a photo of {noun_phrase(colour, shape)}"


def classes() -> list[tuple[str, str]]:
    """Every (colour, shape) pair, colour-major, in the order of `captions()`."""
    return [(c, s) for c in COLOURS for s in SHAPES]


def captions() -> list[str]:
    """All captions, one per class, in a fixed order (colour-major)."""
    return [caption(c, s) for c, s in classes()]


def _shape_colour(colour: str, rng: random.Random) -> tuple[int, int, int]:
    hue = (_HUES[colour] + rng.uniform(-7, 7)) % 360 / 360
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _grey(rng: random.Random) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.08, 0.95))
    return np.array(rgb, dtype=np.float32)


def _background(width: int, height: int, rng: random.Random) -> Image.Image:
    """A low-saturation linear gradient with mild noise."""
    start, end = _grey(rng), _grey(rng)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / max(width - 1, 1) - 0.5) * math.cos(angle) + (ys / max(height - 1, 1) - 0.5) * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = start + (end - start) * t[..., None]
    noise = np.random.default_rng(rng.getrandbits(64)).normal(0, rng.uniform(0, 0.03), pixels.shape)
    return Image.fromarray((np.clip(pixels + noise, 0, 1) * 255).astype(np.uint8), "RGB")


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        radii = [r] * 4
    elif shape == "triangle":
        radii = [r * 1.15] * 3
    else:  # star: five points, inner radius 0.45 of the outer one
        radii = [r * 1.2 if i % 2 == 0 else r * 0.54 for i in range(10)]
    n = len(radii)
    return [
        (cx + rad * math.cos(angle + 2 * math.pi * i / n), cy + rad * math.sin(angle + 2 * math.pi * i / n))
        for i, rad in enumerate(radii)
    ]


def draw(
    colour: str, shape: str, rng_or_seed: random.Random | int, size: int | tuple[int, int] = 64
) -> Image.Image:
    """Draw one `colour` `shape` on a near-grey background; size, position and rotation vary.

    `size` is a side length or (width, height). The shape always lies inside the central square,
    so CLIP's resize-shortest-side-and-centre-crop preprocessing keeps it whole.
    """
    caption(colour, shape)
    rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)
    width, height = (size, size) if isinstance(size, int) else size
    side = min(width, height)
    fill = _shape_colour(colour, rng)
    background = _background(width, height, rng)

    r = rng.uniform(0.16, 0.36) * side
    reach = r * (1.2 if shape == "star" else 1.15 if shape == "triangle" else 1.0)
    slack = max(side / 2 - reach - 1, 0)
    cx = width / 2 + rng.uniform(-slack, slack)
    cy = height / 2 + rng.uniform(-slack, slack)
    angle = rng.uniform(0, 2 * math.pi)

    # Drawn on a supersampled mask, then downscaled: anti-aliased edges like a real photo's.
    k = _SUPERSAMPLE
    mask = Image.new("L", (width * k, height * k), 0)
    pen = ImageDraw.Draw(mask)
    if shape == "circle":
        pen.ellipse([(cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k], fill=255)
    else:
        pen.polygon([(x * k, y * k) for x, y in _outline(shape, cx, cy, r, angle)], fill=255)
    mask = mask.resize((width, height), Image.Resampling.BOX)
    return Image.composite(Image.new("RGB", (width, height), fill), background, mask)


def train_seed(run_seed: int, index: int) -> int:
    """The image seed of the `index`-th training item of a run; always below `HELDOUT_BASE`."""
    return (run_seed % (1 << 16)) << 24 | (index % (1 << 24))


def heldout_seed(seed: int, index: int) -> int:
    """The image seed of the `index`-th held-out item; always at or above `HELDOUT_BASE`."""
    return HELDOUT_BASE + ((seed % (1 << 16)) << 24 | (index % (1 << 24)))


def item(image_seed: int, size: int | tuple[int, int] = 64) -> tuple[str, str, Image.Image]:
    """A random class and its drawing, both chosen by `image_seed`."""
    rng = random.Random(image_seed)
    colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
    return colour, shape, draw(colour, shape, rng, size)


def heldout(n_per_class: int, seed: int = 0, size: int = 64) -> list[tuple[str, str, Image.Image]]:
    """`n_per_class` images of every class, from seeds that training never uses."""
    out = []
    for i, (colour, shape) in enumerate(classes()):
        for j in range(n_per_class):
            image_seed = heldout_seed(seed, i * n_per_class + j)
            out.append((colour, shape, draw(colour, shape, image_seed, size)))
    return out
