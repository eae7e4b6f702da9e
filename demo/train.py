"""Train the demo CLIP from scratch on drawn coloured shapes and write an open_clip model directory.

    python -m demo.train --out models/clip-shapes [--steps 500] [--seed 0]

Deterministic for a given seed and thread count: data comes from per-item seeds, torch is seeded and
runs with deterministic algorithms.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from demo import evaluate, shapes
from demo import model as demo_model

# Phrasings seen in training, so a user's "a red circle" scores like the canonical caption.
TEMPLATES = ("a photo of {}", "{}", "a drawing of {}", "a picture of {}", "an image of {}")
_DRAW_SIZES = (64, 64, 80, 96, 128)  # larger drawings are downscaled by the eval preprocess, as served


def phrasings(colour: str, shape: str) -> list[str]:
    """Every text that stands for a class in training; the first is `shapes.caption`."""
    return [t.format(shapes.noun_phrase(colour, shape)) for t in TEMPLATES] + [f"{colour} {shape}"]


@dataclass
class Result:
    """What a training run produced."""

    losses: list[float]
    seconds: float


def _augment(image: Image.Image, rng: random.Random) -> Image.Image:
    if rng.random() < 0.3:  # uploads are often JPEG: learn to ignore its artefacts
        image = evaluate.jpeg_round_trip(image, rng.randint(30, 95))
    return image


class Batches:
    """Deterministic training batches: item `i` of a run is drawn from `shapes.train_seed(seed, i)`."""

    def __init__(self, seed: int, batch_size: int) -> None:
        self.seed, self.batch_size = seed, batch_size
        self.transform = demo_model.preprocess()
        tokenizer = open_clip.SimpleTokenizer(
            context_length=demo_model.MODEL_CFG["text_cfg"]["context_length"]
        )
        self.class_index = {cls: i for i, cls in enumerate(shapes.classes())}
        self.tokens = {cls: tokenizer(phrasings(*cls)) for cls in shapes.classes()}

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images, token ids and class labels of batch number `step`."""
        images, texts, labels = [], [], []
        for i in range(self.batch_size):
            image_seed = shapes.train_seed(self.seed, step * self.batch_size + i)
            rng = random.Random(image_seed ^ 0x5EED)
            colour, shape, image = shapes.item(image_seed, rng.choice(_DRAW_SIZES))
            images.append(self.transform(_augment(image, rng)))
            phrases = self.tokens[colour, shape]
            texts.append(phrases[rng.randrange(len(phrases))])
            labels.append(self.class_index[colour, shape])
        return torch.stack(images), torch.stack(texts), torch.tensor(labels)


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE where every pair of the same class counts as a positive."""
    logits = scale * image @ text.T
    positives = (labels[:, None] == labels[None, :]).float()
    targets = positives / positives.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def _progress(step: int, steps: int, loss: float, started: float) -> None:
    rate = step / max(time.perf_counter() - started, 1e-9)
    line = f"step {step}/{steps}  loss {loss:.4f}  {rate:.2f} it/s  eta {(steps - step) / rate:.0f}s"
    if sys.stderr.isatty():
        print(f"\r{line}", end="\n" if step == steps else "", file=sys.stderr, flush=True)
    elif step % 25 == 0 or step == steps:
        print(line, file=sys.stderr, flush=True)


def _optimizer(model: torch.nn.Module, lr: float, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (weight decay on matrices only), linear warm-up, then cosine decay to 2 % of `lr`."""
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in named if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    warmup = max(1, min(50, steps // 10))
    schedule = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(optimizer, 0.05, 1.0, warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps - warmup), eta_min=lr * 0.02),
        ],
        milestones=[warmup],
    )
    return optimizer, schedule


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic torch on `threads` threads; the caller's settings come back afterwards."""
    saved_threads, saved_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_det)


def train(
    out: Path, steps: int = 500, seed: int = 0, batch_size: int = 128, lr: float = 2e-3, threads: int = 2
) -> Result:
    """Train for `steps` batches and write the model directory to `out`."""
    with _deterministic(seed, threads):
        model = demo_model.build().train()
        optimizer, schedule = _optimizer(model, lr, steps)
        batches = Batches(seed, batch_size)
        losses: list[float] = []
        started = time.perf_counter()
        for step in range(steps):
            images, texts, labels = batches(step)
            loss = contrastive_loss(
                model.encode_image(images, normalize=True),
                model.encode_text(texts, normalize=True),
                labels,
                model.logit_scale.exp(),
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, 4.6052)  # CLIP's cap: a temperature of at most 100
            losses.append(loss.item())
            _progress(step + 1, steps, losses[-1], started)
        seconds = time.perf_counter() - started
        demo_model.save(model.eval(), out)
    return Result(losses, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (results depend on it)")
    parser.add_argument("--eval-per-class", type=int, default=20, help="held-out images per class; 0 skips")
    args = parser.parse_args(argv)
    result = train(args.out, args.steps, args.seed, args.batch_size, args.lr, args.threads)
    print(
        f"trained {args.steps} steps in {result.seconds:.0f}s ({args.steps / result.seconds:.2f} it/s), "
        f"final loss {result.losses[-1]:.4f}; wrote {args.out}"
    )
    if args.eval_per_class:
        acc = evaluate.evaluate(args.out, args.eval_per_class, seed=0, jpeg_quality=75)
        print(f"held-out zero-shot top-1: {acc['plain']:.2%} (after JPEG q75: {acc['jpeg']:.2%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
