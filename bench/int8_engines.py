"""int8 against the fastest fp32 engine: every int8 file under ONNX Runtime and OpenVINO, as served.

python -m bench.int8_engines [--arch ViT-B-32] [--rounds 3] [--samples 32]

The issue's bar for `--precision int8` is 1.25x fp32 in process, and on a CPU the fp32 default is the
fastest engine the trial finds (ONNX Runtime or OpenVINO), not torch eager. This times, interleaved in
one run (rotating order, best round each): torch fp32 eager, ONNX Runtime and OpenVINO fp32, the
dynamic int8 file `--precision int8` serves (`predictors.quantize.quantize_onnx`), the same after ONNX
Runtime's `quant_pre_process`, and the static int8 files of `bench.int8.static_int8` (QDQ and QOperator,
calibrated on deterministic random inputs) under ONNX Runtime, the QDQ ones also under OpenVINO. Three
workloads, as a predictor runs them on 2 cores: an image batch of 16 on 2 threads; two image passes of
8 at once, 1 thread each; a text batch of 32 ~10-token captions on 1 thread. Random weights (seed 0).
Prints a Markdown table: items/s and the ratios to ONNX Runtime fp32 and torch fp32 of the same run,
and each variant's least cosine to torch fp32 over `--samples` images and texts.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import onnxruntime
import open_clip
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

from bench.int8 import WORDS, cpu_line, static_int8, to_pair
from predictors.engines.onnx_export import export_model
from predictors.engines.openvino_tower import openvino
from predictors.quantize import quantize_onnx
from predictors.text_encoding import encode_text, token_length

Encode = Callable[[torch.Tensor], torch.Tensor]
# workload: (kind, items a step, threads a pass, passes at once)
WORKLOADS = {
    "image 16, 2 threads": ("image", 16, 2, 1),
    "image 2 x 8 at once, 1 thread each": ("image", 16, 1, 2),
    "text 32, 1 thread": ("text", 32, 1, 1),
}


def ort_encode(path: Path, threads: int) -> Encode:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def openvino_encode(path: Path, threads: int, streams: int) -> Encode:
    """As `predictors.engines.openvino_tower` compiles: fp32 hint, a stream and a request a pass."""
    core = openvino().Core()
    config = {
        "NUM_STREAMS": streams,
        "INFERENCE_NUM_THREADS": threads * streams,
        "INFERENCE_PRECISION_HINT": "f32",
        "ENABLE_CPU_PINNING": False,
    }
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    free = [compiled.create_infer_request() for _ in range(streams)]
    local = threading.local()
    lock = threading.Lock()

    def encode(x: torch.Tensor) -> torch.Tensor:
        if not hasattr(local, "request"):
            with lock:
                local.request = free.pop()
        local.request.infer({0: x.numpy()})
        return torch.from_numpy(local.request.get_output_tensor(0).data.copy())

    return encode


def files(model: Any, tokenizer: Any, workdir: Path) -> dict[str, dict[str, Path]]:
    """Each tower's ONNX files by variant: fp32, dynamic int8 (as served, and pre-processed), static."""
    out: dict[str, dict[str, Path]] = {}
    for kind in ("image", "text"):
        fp32 = export_model(model, tokenizer, kind, kind == "text", workdir / f"{kind}.onnx")
        dynamic = quantize_onnx(fp32, workdir / f"{kind}-dynamic.onnx")
        pre = workdir / f"{kind}-dynamic-pre-in.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=kind == "text")
        dynamic_pre = workdir / f"{kind}-dynamic-pre.onnx"
        quantize_dynamic(pre, dynamic_pre, weight_type=QuantType.QUInt8)
        size = to_pair(model.visual.image_size)
        static = static_int8(fp32, kind, tokenizer, size, workdir)
        out[kind] = {
            "fp32": fp32,
            "int8 dynamic (served)": dynamic,
            "int8 dynamic pre-processed": dynamic_pre,
        }
        out[kind].update({f"int8 static {name}": path for name, path in static.items()})
    return out


def variant_names(paths: dict[str, Path]) -> list[str]:
    names = ["torch fp32"] + [f"onnxruntime {v}" for v in paths] + ["openvino fp32"]
    return names + [f"openvino {v}" for v in paths if "QDQ" in v]


def encoder(name: str, kind: str, model: Any, paths: dict[str, Path], threads: int, passes: int) -> Encode:
    if name == "torch fp32":
        return model.encode_image if kind == "image" else lambda t: encode_text(model, t, trim=True)
    engine, variant = name.split(" ", 1)
    if engine == "onnxruntime":
        return ort_encode(paths[variant], threads)
    return openvino_encode(paths[variant], threads, passes)


def step(encode: Encode, batch: torch.Tensor, passes: int, pool: ThreadPoolExecutor) -> Callable[[], Any]:
    """One timed step: the batch in one pass, or split into `passes` passes run at once."""
    if passes == 1:
        return lambda: encode(batch)
    return lambda: [f.result() for f in [pool.submit(encode, part) for part in batch.chunk(passes)]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_engines", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=32, help="images and texts for the cosine")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = open_clip.create_model(args.arch, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(args.arch)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.samples, 3, *to_pair(model.visual.image_size), generator=generator)
    rng = random.Random(0)
    tokens = tokenizer([" ".join(rng.choices(WORDS, k=8)) for _ in range(args.samples)])
    inputs = {"image": images, "text": tokens[:, : token_length(tokens)]}
    pool = ThreadPoolExecutor(2)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        paths = files(model, tokenizer, Path(tmp))
        names = variant_names(paths["image"])
        cosine: dict[tuple[str, str], float] = {}
        torch.set_num_threads(2)
        for kind, x in inputs.items():
            reference = torch.cat([encoder("torch fp32", kind, model, {}, 2, 1)(b) for b in x.split(16)])
            for name in names:
                encode = encoder(name, kind, model, paths[kind], 2, 1)
                out = torch.cat([encode(b) for b in x.split(16)]).float()
                cosine[name, kind] = float(
                    torch.nn.functional.cosine_similarity(out, reference, dim=-1).min()
                )
        best: dict[str, dict[str, float]] = {}
        loads = []
        for workload, (kind, items, threads, passes) in WORKLOADS.items():
            torch.set_num_threads(threads)
            batch = inputs[kind][:items]
            steps = {}
            for name in names:
                encode = encoder(name, kind, model, paths[kind], threads, passes)
                steps[name] = step(encode, batch, passes, pool)
            seconds = dict.fromkeys(names, float("inf"))
            for warm in steps.values():
                warm()
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    started = time.perf_counter()
                    steps[name]()
                    seconds[name] = min(seconds[name], time.perf_counter() - started)
            best[workload] = {name: items / s for name, s in seconds.items()}
            loads.append(os.getloadavg()[0])
    print(report(args, best, cosine, loads))
    return 0


def report(
    args: argparse.Namespace,
    best: dict[str, dict[str, float]],
    cosine: dict[tuple[str, str], float],
    loads: list[float],
) -> str:
    import openvino as ov

    lines = [
        f"CPU: {cpu_line()}",
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, open_clip {open_clip.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, openvino {ov.__version__}",
        f"{args.arch} random weights, best of {args.rounds} interleaved rounds, load average after each "
        f"workload {', '.join(f'{load:.1f}' for load in loads)}; min cosine over {args.samples} inputs",
        "",
    ]
    header = "| variant | " + " | ".join(f"{w}: items/s, vs ORT fp32, vs torch fp32" for w in best)
    lines += [header + " | min cosine image | min cosine text |", "|---|" + "---|" * (len(best) + 2)]
    for name in next(iter(best.values())):
        cells = [
            f"{b[name]:.1f}, {b[name] / b['onnxruntime fp32']:.2f}, {b[name] / b['torch fp32']:.2f}"
            for b in best.values()
        ]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {cosine[name, 'image']:.4f} | {cosine[name, 'text']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
