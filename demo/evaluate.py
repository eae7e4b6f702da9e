"""Zero-shot top-1 accuracy of a demo model directory on held-out drawings.

python -m demo.evaluate --model-dir models/clip-shapes [--per-class 20] [--jpeg-quality 75]
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from demo import model as demo_model
from demo import shapes


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG and decode again, as an uploaded photo would be."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@torch.no_grad()
def accuracy(
    model: Any,
    transform: Callable[[Image.Image], torch.Tensor],
    tokenizer: Any,
    items: Sequence[tuple[str, str, Image.Image]],
) -> float:
    """Fraction of `items` whose best-matching caption, among all classes, is their own."""
    model.eval()
    text = model.encode_text(tokenizer(shapes.captions()), normalize=True)
    images = torch.stack([transform(image) for _, _, image in items])
    predicted = (model.encode_image(images, normalize=True) @ text.T).argmax(dim=1)
    truth = torch.tensor([shapes.classes().index((colour, shape)) for colour, shape, _ in items])
    return float((predicted == truth).float().mean())


def evaluate(model_dir: Path, per_class: int, seed: int, jpeg_quality: int) -> dict[str, float]:
    """Held-out accuracy as drawn (PNG-exact) and after a JPEG round trip."""
    model, transform, tokenizer = demo_model.load(model_dir)
    items = shapes.heldout(per_class, seed)
    jpeg_items = [(c, s, jpeg_round_trip(image, jpeg_quality)) for c, s, image in items]
    return {
        "plain": accuracy(model, transform, tokenizer, items),
        "jpeg": accuracy(model, transform, tokenizer, jpeg_items),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=20, help="held-out images per class")
    parser.add_argument("--seed", type=int, default=0, help="held-out seed")
    parser.add_argument("--jpeg-quality", type=int, default=75)
    args = parser.parse_args(argv)
    result = evaluate(args.model_dir, args.per_class, args.seed, args.jpeg_quality)
    n = args.per_class * len(shapes.classes())
    print(
        f"held-out zero-shot top-1 on {n} images: {result['plain']:.2%} (after JPEG q{args.jpeg_quality}: "
        f"{result['jpeg']:.2%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
