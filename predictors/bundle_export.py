"""Write an engine bundle (`predictors.bundle`) of an open_clip model: needs torch and open_clip.

    python -m predictors.bundle --model_dir DIR [--out DIR]
    python -m predictors.bundle --arch ViT-B-32 --pretrained laion2b_s34b_b79k --out DIR

The model loads as a predictor loads it (on the CPU at fp32); each tower is exported as the engines'
conversion exports it (`predictors.engines.onnx_export`). Nothing is written unless everything the
bundle serves matches the model: ONNX Runtime's features on the exported towers against torch's
(cosine at least `trial.MIN_COSINE["fp32"]`, on the engine trial's parity inputs), the bundle's
tokenizer's ids against open_clip's on PROBE_TEXTS, and the bundle's preprocessing against open_clip's,
bit for bit, on images of PROBE_SIZES. A model these cannot reproduce (another tokenizer, a
preprocessing `predictors.pixels` does not rebuild) is refused with the reason. Files are written under
temporary names and renamed, the manifest last, so a half-written bundle is never read as one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import bpe, pixels
from .bundle import FORMAT, MANIFEST, TOKENIZER, TOWER_FILES, tower_file
from .loaded import LoadedModel, ModelLoadError
from .settings import read_settings
from .threads import ThreadSplit

PROBE_TEXTS = [
    "a photo of a cat",
    "Two DOGS   playing\tin the snow!",
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e &amp; \u65e5\u672c\u8a9e \U0001f600",
    "x",
    " ".join(["a long caption that runs past any context"] * 20),
]
PROBE_SIZES = [(1, 1), (37, 201), (640, 480), (224, 224), (301, 999)]

logger = logging.getLogger(__name__)


class BundleError(ValueError):
    """The model cannot be written as a bundle that serves what it serves."""


def _check_tokenizer(loaded: LoadedModel) -> bpe.BpeTokenizer:
    import open_clip

    tokenizer = loaded.tokenizer
    if type(tokenizer) is not open_clip.tokenizer.SimpleTokenizer:
        raise BundleError(f"its tokenizer is {type(tokenizer).__name__}; a bundle holds CLIP's BPE tokenizer")
    ours = bpe.BpeTokenizer(open_clip.tokenizer.default_bpe(), tokenizer.context_length)
    if not np.array_equal(ours(PROBE_TEXTS), tokenizer(PROBE_TEXTS).numpy()):
        raise BundleError(
            "its tokenizer is configured otherwise than CLIP's (its ids differ from the bundle's)"
        )
    return ours


def _check_preprocess(loaded: LoadedModel) -> None:
    from .imagetensor import model_transform

    cfg = loaded.preprocess_cfg or {}
    try:
        ours = pixels.image_transform(cfg)
    except ValueError as e:
        raise BundleError(f"its preprocessing cannot be rebuilt without torch: {e}") from e
    theirs = model_transform(loaded.preprocess)
    rng = np.random.default_rng(0)
    for width, height in PROBE_SIZES:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        if not np.array_equal(ours(image), theirs(image)):
            raise BundleError(f"its preprocessing differs from open_clip's on a {width}x{height} image")


def _tower_parity(loaded: LoadedModel, kind: str, path: Path) -> float:
    from .engines import Choice, build
    from .engines.ort_tower import OrtTower
    from .engines.trial import Parity

    split = ThreadSplit(1, os.cpu_count() or 1, os.cpu_count() or 1)
    reference = build(Choice("torch", "torch", "fp32"), loaded, kind, split)
    exported = OrtTower(Choice("onnxruntime", "onnxruntime", "fp32"), kind, reference.trim, split, path)
    return Parity(reference, loaded).min_cosine(exported)


def write_bundle(loaded: LoadedModel, out: Path) -> dict[str, Any]:
    """Write `loaded`'s bundle into `out` (made if missing); returns its manifest. `BundleError` if the
    bundle would not serve what the model serves."""
    import open_clip
    import torch

    from .engines.onnx_export import OPSET, export_model
    from .engines.trial import MIN_COSINE

    if loaded.device.type != "cpu" or loaded.dtype != torch.float32:
        raise BundleError(f"a bundle is written from a CPU fp32 model, not {loaded.device} {loaded.dtype}")
    tokenizer = _check_tokenizer(loaded)
    _check_preprocess(loaded)
    out.mkdir(parents=True, exist_ok=True)
    cosines = {}
    for kind in TOWER_FILES:
        path = tower_file(out, kind)
        partial = path.with_name(f".{path.name}.partial")
        export_model(loaded.model, loaded.tokenizer, kind, kind == "text" and loaded.trim, partial)
        cosines[kind] = cosine = _tower_parity(loaded, kind, partial)
        if not cosine >= MIN_COSINE["fp32"]:
            partial.unlink()
            raise BundleError(f"its exported {kind} tower differs from torch's (cosine {cosine:.6f})")
        partial.replace(path)
    shutil.copyfile(open_clip.tokenizer.default_bpe(), out / bpe.VOCAB_FILE)
    manifest = {
        "format": FORMAT,
        "arch": loaded.arch,
        "pretrained": loaded.pretrained,
        "embed_dim": loaded.embed_dim,
        "logit_scale": loaded.logit_scale,
        "preprocess_cfg": loaded.preprocess_cfg,
        "text": {
            "tokenizer": TOKENIZER,
            "vocab": bpe.VOCAB_FILE,
            "context_length": tokenizer.context_length,
            "trim": loaded.trim,
        },
        "min_cosine_to_torch": {kind: round(c, 7) for kind, c in cosines.items()},
        "written_with": {"torch": torch.__version__, "open_clip": open_clip.__version__, "opset": OPSET},
    }
    partial = out / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(out / MANIFEST)
    return manifest


def main(argv: list[str] | None = None) -> None:
    """`python -m predictors.bundle`: the model flags of a predictor, plus `--out`."""
    parser = argparse.ArgumentParser(
        prog="python -m predictors.bundle",
        description="Write an engine bundle of an open_clip model, which the predictors serve without torch.",
    )
    parser.add_argument("--out", type=Path, help="the bundle's directory (default: the --model_dir itself)")
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = dataclasses.replace(read_settings("image", rest), device="cpu", precision="fp32")
    out = args.out or settings.model_dir
    if out is None:
        parser.error("--out is needed when no --model_dir is given")
    from .loading import load_model

    try:
        loaded = load_model(settings)
        manifest = write_bundle(loaded, out)
    except (ModelLoadError, BundleError) as e:
        logger.error("cannot write a bundle: %s", e)
        sys.exit(1)
    sizes = {name: (out / name).stat().st_size / 2**20 for name in TOWER_FILES.values()}
    logger.info(
        "wrote the engine bundle of %s (pretrained=%s) to %s: %s; min cosine to torch %s",
        loaded.arch, loaded.pretrained, out, ", ".join(f"{n} {mb:.1f} MB" for n, mb in sizes.items()),
        manifest["min_cosine_to_torch"],
    )  # fmt: skip
