"""The CPU predictor image (no torch) against the full predictor image: size, and time from `podman run`
to ready serving the same model, in interleaved rounds.

python -m bench.images [--rounds 3] [--out bench/results/cpu-image.md]

Both images are run as the chart runs its pods (`tests.images.podman`: read-only root, uid 10001, the model
read-only at /mnt/models). The full image serves the model directory, or ViT-B-32's random weights by
flag; it converts the towers its engine trial needs to ONNX at load (nothing is cached on a read-only
mount). The CPU image serves the engine bundle `predictors.bundle` writes from the same model. Each round
starts the image predictor of each image in turn and times until `/v2/models/clip-image/ready` answers
(polled every 0.5 s); the table keeps each one's median. Needs `make images` first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import block, describe
from devtools.procs import ROOT, pick_free_port
from predictors.bundle_export import write_bundle
from predictors.loading import load_model
from predictors.settings import read_settings
from tests.images.podman import PREDICTOR_CPU_IMAGE, PREDICTOR_IMAGE, Container, image_size, model_mount

DEMO = ROOT / "models" / "clip-shapes"
MODELS = {  # name: (the full image's model flags, the flags a bundle is written from)
    "demo (clip-shapes)": (["--model_dir", "/mnt/models"], ["--model_dir", str(DEMO)]),
    "ViT-B-32, random weights": (
        ["--arch", "ViT-B-32", "--pretrained", "none"],
        ["--arch", "ViT-B-32", "--pretrained", "none"],
    ),
}


def bundle(flags: list[str], out: Path) -> Path:
    write_bundle(load_model(read_settings("image", flags)), out)
    for path in (out, *out.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def seconds_to_ready(image: str, model_flags: list[str], model_dir: Path) -> float:
    http, grpc = pick_free_port(), pick_free_port()
    pod = Container(
        name=f"clip-bench-images-{os.getpid()}-{http}",
        image=image,
        args=["-m", "predictors.image", *model_flags, "--http_port", str(http), "--grpc_port", str(grpc)],
        ready_url=f"http://127.0.0.1:{http}/v2/models/clip-image/ready",
        env={"HF_HUB_OFFLINE": "1"},
        volumes=[model_mount(model_dir)],
        tmpfs=["/cache"],
    )
    started = time.monotonic()
    try:
        pod.start().wait_ready(timeout=600)
        return time.monotonic() - started
    finally:
        pod.remove()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.images", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    sizes = {image: image_size(image) for image in (PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        for n, (name, (full_flags, bundle_flags)) in enumerate(MODELS.items()):
            bundled = bundle(bundle_flags, Path(tmp) / f"bundle-{n}")
            runs: dict[str, list[float]] = {PREDICTOR_IMAGE: [], PREDICTOR_CPU_IMAGE: []}
            for r in range(args.rounds):
                order = [PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE][:: 1 if r % 2 == 0 else -1]
                for image in order:
                    flags = full_flags if image == PREDICTOR_IMAGE else []
                    runs[image].append(
                        seconds_to_ready(image, flags, DEMO if image == PREDICTOR_IMAGE else bundled)
                    )
            full, cpu = (statistics.median(runs[i]) for i in (PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE))
            rows.append(f"| {name} | {full:.1f} s | {cpu:.1f} s | {cpu / full:.2f} |")
    report = "\n".join([
        "# The CPU predictor image (no torch) against the full predictor image",
        "",
        f"Machine: {describe(block())}. `python -m bench.images --rounds {args.rounds}`; medians of "
        "interleaved rounds, `podman run` to `/v2/models/clip-image/ready`.",
        "",
        "| image | size |",
        "|---|---|",
        *(f"| {image} | {size / 1e9:.2f} GB |" for image, size in sizes.items()),
        f"| ratio (CPU / full) | {sizes[PREDICTOR_CPU_IMAGE] / sizes[PREDICTOR_IMAGE]:.2f} |",
        "",
        "| model | full image: start to ready | CPU image (bundle): start to ready | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
