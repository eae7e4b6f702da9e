"""The limit: the same model in one process, decode + preprocess + encode of image and text, no server.

Runs the predictors' own code path (settings, loading in eval mode, reduced-scale decoding, the text
tower at the real token length) under every engine and kernel choice the predictors may pick (each
forced in turn, through `bench.engines`), at several batch sizes and under every way to spend the CPU
cores (`bench.pairs`: one pipeline with all threads; one pipeline a core, each on one thread; for one
pair, the image and text towers at once, as the two predictors run them), because a pipeline with 2
intra-op threads on 2 cores stalls at every barrier whenever another process takes a core. The limit
is the best of them all, so the service can only beat it by a measurement error. The default choice
(`auto`) is measured the same way and reported beside it. Prints one JSON object: per choice, pairs/s
per config and batch size, its best, the fastest one pair (p50) and CPU seconds per pair; the limit
(best choice); peak RSS; the reduced-scale decoding of a 12-megapixel JPEG; with `--precision int8`,
each choice's minimum cosine to the fp32 default's embeddings.
Run by `bench.run` as `python -m bench.inprocess ...`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
from typing import Any

import numpy as np
import torch

from bench import engines
from bench.decoding import reduced_decoding
from bench.engines import Towers
from bench.pairs import images, measure, min_decode_side, texts
from bench.payloads import distinct_text, photos
from predictors.memory import keep_freed_memory
from predictors.text_encoding import can_trim


def limit(per_choice: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The limit over the forced choices (the default is measured beside them, not counted twice): the
    best choice's figures at top level, the fastest one pair of any choice."""
    forced = {k: v for k, v in per_choice.items() if k != engines.AUTO} or per_choice
    best = max(forced, key=lambda k: forced[k]["best_pairs_per_s"])
    with_one = [k for k in forced if forced[k]["p50_ms_one_pair"] is not None]
    fastest = min(with_one, key=lambda k: forced[k]["p50_ms_one_pair"]) if with_one else None
    out = {k: v for k, v in forced[best].items() if k != "choice"}
    out.update(best_choice=best, choices=per_choice)
    out.update(
        p50_ms_one_pair=forced[fastest]["p50_ms_one_pair"] if fastest else None,
        one_pair_config=f"{fastest}: {forced[fastest]['one_pair_config']}" if fastest else None,
    )
    return out


def _cosine_to(reference: tuple[np.ndarray, np.ndarray], towers: Towers, min_side: int) -> float:
    files, strings = photos(8), [distinct_text(i) for i in range(8)]
    ref_images, ref_texts = reference
    got = (images(towers, files, min_side) * ref_images).sum(-1), (texts(towers, strings) * ref_texts).sum(-1)
    return float(np.concatenate(got).min())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto", help="auto, fp32, fp16, bf16 or int8 (CPU)")
    p.add_argument(
        "--choices", default="all", help="'all' (auto and every forced choice) or labels, ';'-separated"
    )
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--only-config", help="measure only this config (its name as reported), e.g. to re-measure"
    )
    p.add_argument("--skip-decoding", action="store_true", help="skip the reduced-scale decoding measurement")
    args = p.parse_args()
    settings = engines.settings(args.model_flags, args.device, args.precision)
    # torch's default (one thread per core) whatever --num_threads the predictors get: the limit tries
    # every way to use the cores itself. The same malloc settings as the predictors have.
    keep_freed_memory()
    cores = torch.get_num_threads()
    wanted = [engines.AUTO, *engines.labels(settings)] if args.choices == "all" else args.choices.split(";")
    batches = [int(b) for b in args.batches.split(",")]
    reference = None
    if args.precision == "int8":
        fp32 = engines.load(engines.settings(args.model_flags, args.device, "fp32"), engines.AUTO, cores)
        side = min_decode_side(fp32)
        reference = (images(fp32, photos(8), side), texts(fp32, [distinct_text(i) for i in range(8)]))
        del fp32
    per_choice: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    for label in wanted:
        towers = engines.load(settings, label, cores)
        per_choice[label] = measure(towers, batches, args.repeats, args.only_config)
        if reference is not None:
            per_choice[label]["min_cosine_to_fp32"] = _cosine_to(reference, towers, min_decode_side(towers))
        if not extra:
            extra = {
                "text_trimmed": can_trim(towers.loaded.model),
                "min_decode_side": min_decode_side(towers),
                "device": str(towers.loaded.device),
            }
            if not args.skip_decoding:
                extra["reduced_decoding"] = reduced_decoding(towers, extra["min_decode_side"], args.repeats)
        del towers
        gc.collect()
    result = {**limit(per_choice), **extra, "torch_threads": cores, "precision": args.precision}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
