"""Write the demo images in `samples/` (used by the README's curl lines) and their README.

    python -m demo.samples [--out samples]

Deterministic: each image comes from a fixed held-out seed, so none of them was seen in training.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

from demo import shapes

ROOT = Path(__file__).resolve().parents[1]


class Sample(NamedTuple):
    """One demo image: its file name, class and pixel size (width, height)."""

    filename: str
    colour: str
    shape: str
    size: tuple[int, int]

    @property
    def caption(self) -> str:
        return shapes.caption(self.colour, self.shape)


SAMPLES: tuple[Sample, ...] = (
    Sample("red-circle.png", "red", "circle", (224, 224)),
    Sample("blue-square.jpg", "blue", "square", (224, 224)),
    Sample("green-triangle.png", "green", "triangle", (256, 256)),
    Sample("orange-star.png", "orange", "star", (160, 160)),
    Sample("purple-star-640x480.jpg", "purple", "star", (640, 480)),
)
_SEED = 1000  # held-out seed family for the samples


def write(out: Path) -> list[Path]:
    """Draw every sample into `out` and write `out/README.md`; returns the image paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, sample in enumerate(SAMPLES):
        image = shapes.draw(sample.colour, sample.shape, shapes.heldout_seed(_SEED, i), sample.size)
        path = out / sample.filename
        if path.suffix == ".jpg":
            image.save(path, format="JPEG", quality=90)
        else:
            image.save(path, format="PNG")
        paths.append(path)
    (out / "README.md").write_text(_readme())
    return paths


def _readme() -> str:
    rows = "\n".join(f"| `{s.filename}` | {s.size[0]}x{s.size[1]} | {s.caption} |" for s in SAMPLES)
    return f"""# Demo images

Drawn by `python -m demo.samples` (deterministic; do not edit by hand) for the README's examples.
Each matches exactly one of the demo model's captions (`models/clip-shapes`), and none was seen in training.

| file | pixels | matching caption |
|---|---|---|
{rows}

Every other caption `a photo of a|an <colour> <shape>`, with colour one of {", ".join(shapes.COLOURS)}
and shape one of {", ".join(shapes.SHAPES)}, is a non-match to compare against.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.samples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "samples")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
