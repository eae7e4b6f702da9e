"""The limit: the same model in one process, decode + preprocess + encode of image and text, no server.

Runs the predictors' own code path (settings, loading, reduced-scale decoding, trimmed text encoding)
at several batch sizes and prints one JSON object: pairs/s per batch size, the best, the p50 of one pair
(batch 1), CPU seconds per pair, peak RSS; and the reduced-scale decoding of a 12-megapixel JPEG
(speed-up and embedding cosine). Run by `bench.run` as `python -m bench.inprocess ...`.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shlex
import statistics
import time
from typing import Any

import torch

from bench.payloads import distinct_text, jpeg, photos
from predictors.imaging import decode_image
from predictors.loading import LoadedModel, load_model
from predictors.settings import read_settings
from predictors.text_encoding import can_trim, encode_text

LIMIT = 40_000_000


def _sync(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()


def _images(loaded: LoadedModel, files: list[bytes], min_side: int | None) -> torch.Tensor:
    batch = torch.stack([loaded.preprocess(decode_image(f, LIMIT, i, min_side)) for i, f in enumerate(files)])
    with torch.inference_mode():
        out = loaded.model.encode_image(batch.to(loaded.device, loaded.dtype))  # type: ignore[operator]
        return torch.nn.functional.normalize(out.float(), dim=-1)


def _texts(loaded: LoadedModel, texts: list[str], trim: bool) -> torch.Tensor:
    with torch.inference_mode():
        out = encode_text(loaded.model, loaded.tokenizer(texts).to(loaded.device), trim)
        return torch.nn.functional.normalize(out.float(), dim=-1)


def measure(loaded: LoadedModel, batches: list[int], repeats: int) -> dict[str, Any]:
    size = loaded.model.visual.preprocess_cfg["size"]  # type: ignore[union-attr,index]
    min_side = 2 * max(size if isinstance(size, tuple | list) else (size,))
    trim = can_trim(loaded.model)
    files = photos(16)
    per_batch: dict[str, dict[str, float]] = {}
    cpu_per_pair = {}
    serial = 0
    for b in batches:
        times = []
        for r in range(max(repeats, 16 // b) + 1):  # the first round warms up; small batches repeat more
            imgs = [files[(serial + i) % len(files)] for i in range(b)]
            texts = [distinct_text(serial + i) for i in range(b)]
            serial += b
            cpu, started = time.process_time(), time.perf_counter()
            image_rows, text_rows = _images(loaded, imgs, min_side), _texts(loaded, texts, trim)
            (image_rows * text_rows).sum(dim=-1).cpu()
            _sync(loaded)
            if r:
                times.append(time.perf_counter() - started)
                cpu_per_pair[b] = (time.process_time() - cpu) / b
        median = statistics.median(times)
        per_batch[str(b)] = {"median_s": median, "pairs_per_s": b / median, "cpu_s_per_pair": cpu_per_pair[b]}
    best = max(per_batch, key=lambda k: per_batch[k]["pairs_per_s"])
    one = per_batch.get("1")
    return {
        "batches": per_batch,
        "best_batch": int(best),
        "best_pairs_per_s": per_batch[best]["pairs_per_s"],
        "cpu_s_per_pair": per_batch[best]["cpu_s_per_pair"],
        "p50_ms_one_pair": one["median_s"] * 1000 if one else None,
        "text_trimmed": trim,
        "min_decode_side": min_side,
    }


def reduced_decoding(loaded: LoadedModel, min_side: int, repeats: int) -> dict[str, Any]:
    """Decode + preprocess of 12-megapixel JPEGs with and without reduced-scale decoding."""
    from PIL import Image

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
                loaded.preprocess(decode_image(f, LIMIT, 0, side))
            runs.append((time.perf_counter() - started) / len(files))
        return statistics.median(runs)

    full, reduced = timed(None), timed(min_side)
    cosines = (_images(loaded, files, min_side) * _images(loaded, files, None)).sum(dim=-1)
    return {
        "image": "4000x3000 JPEG q90",
        "full_decode_ms": full * 1000,
        "reduced_decode_ms": reduced * 1000,
        "speedup": full / reduced,
        "min_cosine": float(cosines.min()),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    settings = read_settings("image", [*shlex.split(args.model_flags), "--device", args.device])
    if settings.num_threads > 0:
        torch.set_num_threads(settings.num_threads)
    loaded = load_model(settings)
    result = measure(loaded, [int(b) for b in args.batches.split(",")], args.repeats)
    result["reduced_decoding"] = reduced_decoding(loaded, result["min_decode_side"], args.repeats)
    result["torch_threads"] = torch.get_num_threads()
    result["device"] = str(loaded.device)
    result["precision"] = str(loaded.dtype).removeprefix("torch.")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
