"""The default choice against every forced one: is `auto` within 3% of the best, on this CPU?

    python -m bench.choices --model-flags "--arch ViT-B-32 --pretrained none" --batches 1,16

Loads the model once per choice (the default, as the predictors pick it at load, and each engine and
kernel choice forced), then times each tower, image and text, at each batch size: every round runs every
choice once, in an order that rotates from round to round, so that the machine's drift hits all alike.
Only the tower is timed (pixels and token ids are prepared once): that is where the choices differ. A
pass gets every core (the towers' `alone`). Items/s per choice are medians over the rounds; the verdict
compares the default with the best forced choice. Prints one JSON object; `bench.run` runs it per model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from bench import engines
from bench.decoding import LIMIT
from bench.payloads import distinct_text, photos
from predictors.preprocess import decode_image

WITHIN = 0.97  # the default may be at most 3% slower than the best forced choice


def verdict(rates: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of each choice's rounds, and the default (`engines.AUTO`) over the best forced one."""
    medians = {label: statistics.median(r) for label, r in rates.items()}
    forced = {label: m for label, m in medians.items() if label != engines.AUTO}
    best = max(forced, key=forced.__getitem__)
    ratio = medians[engines.AUTO] / forced[best]
    return {
        "items_per_s": medians,
        "best_forced": best,
        "default_over_best": ratio,
        "passed": ratio >= WITHIN,
    }


def _inputs(towers: engines.Towers, kind: str, batch: int) -> torch.Tensor:
    if kind == "text":
        return towers.loaded.tokenizer([distinct_text(i) for i in range(batch)])
    files = photos(batch)
    return torch.stack(
        [towers.loaded.preprocess(decode_image(f, LIMIT, i, None)) for i, f in enumerate(files)]
    )


def _rate(encode: engines.Encode, x: torch.Tensor, min_s: float) -> float:
    """Items/s of repeated passes over at least `min_s` seconds."""
    passes, started = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - started < min_s:
        encode(x, True)
        passes += 1
    return passes * len(x) / (time.perf_counter() - started)


def compare(
    all_towers: dict[str, engines.Towers], batches: list[int], rounds: int, min_s: float
) -> dict[str, Any]:
    """Per tower and batch size, the interleaved rates and the verdict."""
    labels = list(all_towers)
    out: dict[str, Any] = {}
    for kind in ("image", "text"):
        for batch in batches:
            x = _inputs(all_towers[labels[0]], kind, batch)
            encoders = {label: getattr(t, kind) for label, t in all_towers.items()}
            for encode in encoders.values():
                encode(x, True)  # warm-up: first passes allocate and may compile
            rates: dict[str, list[float]] = {label: [] for label in labels}
            for r in range(rounds):
                for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                    rates[label].append(_rate(encoders[label], x, min_s))
            out[f"{kind}, batch {batch}"] = {**verdict(rates), "rounds": rates}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-s", type=float, default=1.0, help="seconds each choice runs in each round")
    args = p.parse_args()
    settings = engines.settings(args.model_flags, args.device)
    cores = torch.get_num_threads()
    all_towers = {
        label: engines.load(settings, label, cores) for label in [engines.AUTO, *engines.labels(settings)]
    }
    cases = compare(all_towers, [int(b) for b in args.batches.split(",")], args.rounds, args.min_s)
    result = {
        "default_chose": all_towers[engines.AUTO].label,
        "within": WITHIN,
        "cases": cases,
        "passed": all(c["passed"] for c in cases.values()),
        "worst_default_over_best": min(c["default_over_best"] for c in cases.values()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
