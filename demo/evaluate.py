"""Zero-shot top-1 accuracy of a demo model directory on held-out drawings.

python -m demo.evaluate --model-dir models/clip-shapes [--per-class 20] [--jpeg-quality 75]
    [--engine torch|onnxruntime] [--precision fp32|int8]

`--precision int8` measures what dynamic int8 quantization (`predictors.quantize`) costs in accuracy,
on torch or on ONNX Runtime (the towers exported to ONNX in a temporary directory).
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from demo import model as demo_model
from demo import shapes
from predictors.engines.onnx_export import export_model
from predictors.engines.tower import INPUT
from predictors.quantize import quantize_onnx, quantize_torch
from predictors.text_encoding import token_length

ENGINES = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "int8")


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


class OnnxClip:
    """`encode_image` / `encode_text` (what `accuracy` calls) on ONNX Runtime sessions of both towers."""

    def __init__(self, image_path: Path, text_path: Path) -> None:
        import onnxruntime

        self._image = onnxruntime.InferenceSession(str(image_path), providers=["CPUExecutionProvider"])
        self._text = onnxruntime.InferenceSession(str(text_path), providers=["CPUExecutionProvider"])

    def eval(self) -> OnnxClip:
        return self

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self._features(self._image.run(None, {INPUT: images.numpy()})[0], normalize)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        tokens = tokens[:, : token_length(tokens)]
        return self._features(self._text.run(None, {INPUT: tokens.numpy()})[0], normalize)

    @staticmethod
    def _features(array: Any, normalize: bool) -> torch.Tensor:
        x = torch.from_numpy(array)
        return torch.nn.functional.normalize(x, dim=-1) if normalize else x


def variant(model: Any, tokenizer: Any, engine: str, precision: str, workdir: Path) -> Any:
    """`model` on `engine` at `precision`: itself, itself quantized in place, or ONNX Runtime sessions
    of its towers exported (and quantized) under `workdir`."""
    if engine == "torch":
        return quantize_torch(model) if precision == "int8" else model
    workdir.mkdir(parents=True, exist_ok=True)
    paths = [export_model(model, tokenizer, k, k == "text", workdir / f"{k}.onnx") for k in ("image", "text")]
    if precision == "int8":
        paths = [quantize_onnx(p, p.with_suffix(".int8.onnx")) for p in paths]
    return OnnxClip(*paths)


def evaluate(
    model_dir: Path,
    per_class: int,
    seed: int,
    jpeg_quality: int,
    engine: str = "torch",
    precision: str = "fp32",
) -> dict[str, float]:
    """Held-out accuracy as drawn (PNG-exact) and after a JPEG round trip, on `engine` at `precision`."""
    loaded, transform, tokenizer = demo_model.load(model_dir)
    with tempfile.TemporaryDirectory() as workdir:
        model = variant(loaded, tokenizer, engine, precision, Path(workdir))
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
    parser.add_argument("--engine", choices=ENGINES, default="torch")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args(argv)
    result = evaluate(
        args.model_dir, args.per_class, args.seed, args.jpeg_quality, args.engine, args.precision
    )
    n = args.per_class * len(shapes.classes())
    print(
        f"{args.engine} {args.precision}: held-out zero-shot top-1 on {n} images: {result['plain']:.2%} "
        f"(after JPEG q{args.jpeg_quality}: {result['jpeg']:.2%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
