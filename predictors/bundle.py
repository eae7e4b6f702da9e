"""An engine bundle: a model's two towers as ONNX files with what serving them needs, so that a predictor
runs without torch or open_clip (the CPU image, `Dockerfile.predictor-cpu`).

    python -m predictors.bundle --model_dir DIR [--out DIR]   # where torch is installed: writes one

A bundle is a directory (by default the model directory itself) holding `clip_bundle.json`, the towers
`image.onnx` and `text.onnx` (fp32; the text tower takes ids cut to the batch's token length when that
is exact, as the predictors run it) and CLIP's tokenizer vocabulary. `clip_bundle.json` records the
model's name, pretrained tag, embedding size and logit scale, open_clip's preprocessing config, the
tokenizer's context length, how closely each tower matched torch's when it was written, and the versions
it was written with (`predictors.bundle_export`).

A predictor serves the bundle in its model directory where torch is not installed, or where the
directory holds a bundle and no weights (`load`); otherwise open_clip's model (`predictors.loading`).
A bundle runs on the CPU at fp32, on ONNX Runtime or OpenVINO, whichever the engine trial picks; its
images are preprocessed by `predictors.pixels` and its texts tokenized by `predictors.bpe`, which give
open_clip's values exactly. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from .loaded import WEIGHT_FILES, Cpu, LoadedModel, ModelLoadError, resolve_precision
from .settings import Settings

MANIFEST = "clip_bundle.json"
FORMAT = 1  # raised when a bundle's files change meaning; a predictor refuses other formats
TOWER_FILES = {"image": "image.onnx", "text": "text.onnx"}
TOKENIZER = "clip-bpe"  # the only tokenizer a bundle holds: predictors.bpe


def tower_file(directory: Path, kind: str) -> Path:
    """The bundle's ONNX file of the `kind` tower."""
    return directory / TOWER_FILES[kind]


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def load(settings: Settings) -> LoadedModel:
    """The model the settings name: the model directory's bundle where torch is not installed or the
    directory has no weights, else open_clip's model. `ModelLoadError` says why neither can be served."""
    directory = settings.model_dir
    bundled = directory is not None and (directory / MANIFEST).is_file()
    torch = torch_installed()
    if directory is not None and bundled:
        weights = any((directory / name).is_file() for name in WEIGHT_FILES)
        if not torch or not weights:
            return load_bundle(directory, settings)
    if not torch:
        where = f"model dir {directory} has none" if directory is not None else "no --model_dir names one"
        raise ModelLoadError(
            f"torch is not installed here, so this predictor serves an engine bundle ({MANIFEST}), "
            f"and {where}; write one with `python -m predictors.bundle --model_dir DIR` where torch is "
            "installed"
        )
    from .loading import load_model

    return load_model(settings)


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read {path}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelLoadError(f"{path} is bundle format {got!r}; this predictor reads format {FORMAT}")
    return manifest


def load_bundle(directory: Path, settings: Settings) -> LoadedModel:
    """The bundle in `directory`, ready for its towers to be built (`predictors.engines`)."""
    from . import bpe, pixels

    if settings.device not in ("auto", "cpu"):
        raise ModelLoadError(f"an engine bundle runs on the CPU, not --device {settings.device}")
    precision = resolve_precision(settings.precision, Cpu())
    if precision != "fp32":
        raise ModelLoadError(
            f"an engine bundle runs at fp32; --precision {precision} needs the model's weights and torch"
        )
    manifest = _manifest(directory)
    try:
        text = manifest["text"]
        if text["tokenizer"] != TOKENIZER:
            raise ModelLoadError(f"its tokenizer is {text['tokenizer']!r}; a bundle holds {TOKENIZER!r}")
        files = [directory / MANIFEST, *(tower_file(directory, kind) for kind in TOWER_FILES)]
        vocab = directory / text["vocab"]
        missing = [f.name for f in [*files, vocab] if not f.is_file()]
        if missing:
            raise ModelLoadError(f"it lacks {', '.join(missing)}")
        preprocess_cfg = dict(manifest["preprocess_cfg"])
        return LoadedModel(
            model=None,
            preprocess=pixels.image_transform(preprocess_cfg),
            tokenizer=bpe.BpeTokenizer(vocab, int(text["context_length"])),
            arch=str(manifest["arch"]),
            pretrained=str(manifest["pretrained"]),
            embed_dim=int(manifest["embed_dim"]),
            logit_scale=float(manifest["logit_scale"]),
            device=Cpu(),
            dtype="float32",
            source_files=tuple(files),
            preprocess_cfg=preprocess_cfg,
            trim=bool(text["trim"]),
            bundle=directory,
        )
    except ModelLoadError as e:
        raise ModelLoadError(f"cannot serve the engine bundle in {directory}: {e}") from e
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ModelLoadError(f"cannot serve the engine bundle in {directory}: {type(e).__name__}: {e}") from e


def main() -> None:
    from .bundle_export import main as export_main

    export_main()


if __name__ == "__main__":
    main()
