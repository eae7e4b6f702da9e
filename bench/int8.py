"""int8 against fp32, in process: speed and embedding cosine of every int8 variant of both towers.

python -m bench.int8 [--arch ViT-B-32] [--threads 2] [--batch 16] [--rounds 6] [--openvino] [--static]

Random weights (seed 0): the cost of compute does not depend on them, and the cosine of int8 to fp32
on random weights is the issue's acceptance figure. The variants run interleaved, round after round,
on the same image batch and the same ~10-token texts; each is reported by its best round (wall clock)
and its least CPU time, as ratios to torch fp32 eager. Prints a Markdown report for bench/results/.

`--static` adds static int8 (`quantize_static`: activations quantized with ranges calibrated once, on
deterministic random images and random-word captions, instead of per pass), in ONNX Runtime's QDQ and
QOperator formats, each run by ONNX Runtime and the QDQ files also by OpenVINO (which runs
QuantizeLinear/DequantizeLinear pairs around a matrix multiply as an int8 layer). It needs
`--openvino` for the OpenVINO rows.
"""

from __future__ import annotations

import argparse
import copy
import platform
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime
import open_clip
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from predictors.engines.onnx_export import export_model
from predictors.quantize import quantize_onnx, quantize_torch
from predictors.text_encoding import encode_text, token_length

Encode = Callable[[torch.Tensor], torch.Tensor]
WORDS = ["a", "photo", "of", "the", "small", "red", "dog", "cat", "on", "green", "grass", "near", "blue"]
# Each ONNX int8 variant: its `quantize_onnx` keywords, or None: matmul-only, through ONNX Runtime itself.
ONNX_INT8: dict[str, dict[str, Any] | None] = {
    "u8": {},
    "u8 per-channel": {"per_channel": True},
    "s8": {"signed_weights": True},
    "u8 matmul-only": None,
}

# Each static variant: (format, weight type, 7-bit weights). Activations are unsigned 8-bit, weights per
# channel; only the matrix multiplies with a constant weight are quantized.
ONNX_STATIC: dict[str, tuple[QuantFormat, QuantType, bool]] = {
    "QDQ s8 7-bit": (QuantFormat.QDQ, QuantType.QInt8, True),
    "QDQ u8": (QuantFormat.QDQ, QuantType.QUInt8, False),
    "QOperator u8": (QuantFormat.QOperator, QuantType.QUInt8, False),
}
CALIBRATION_BATCHES = 3


class Calibration(CalibrationDataReader):
    """Deterministic calibration batches: random pixels, or captions of random words at their length."""

    def __init__(self, kind: str, tokenizer: Any, size: tuple[int, int], batch: int = 8) -> None:
        generator = torch.Generator().manual_seed(123)
        rng = random.Random(123)
        self.batches: list[Any] = []
        for i in range(CALIBRATION_BATCHES):
            if kind == "image":
                self.batches.append(torch.randn(batch, 3, *size, generator=generator).numpy())
            else:
                ids = tokenizer([" ".join(rng.choices(WORDS, k=4 + 6 * i)) for _ in range(batch)])
                self.batches.append(ids[:, : token_length(ids)].numpy())
        self.rewind()

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self._it, None)
        return None if batch is None else {"input": batch}

    def rewind(self) -> None:
        self._it = iter(self.batches)


def static_int8(
    fp32: Path, kind: str, tokenizer: Any, size: tuple[int, int], workdir: Path
) -> dict[str, Path]:
    """The static int8 files of the fp32 tower `fp32`, by variant name."""
    pre = workdir / f"{kind}-pre.onnx"
    # Symbolic shape inference cannot follow the text tower's dynamic length; ONNX's own then serves.
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=kind == "text")
    out = {}
    for name, (fmt, weight_type, seven_bit) in ONNX_STATIC.items():
        dst = workdir / f"{kind}-static-{name.replace(' ', '-')}.onnx"
        quantize_static(
            pre, dst, Calibration(kind, tokenizer, size), quant_format=fmt,
            op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, reduce_range=seven_bit,
            activation_type=QuantType.QUInt8, weight_type=weight_type,
        )  # fmt: skip
        out[name] = dst
    return out


def cpu_line() -> str:
    """CPU model and the vector extensions that decide int8 kernels, from /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())  # type: ignore[union-attr]
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"]
    return f"{model.group(1) if model else platform.processor()}; " + " ".join(
        f"{f}={'yes' if f in flags else 'no'}" for f in wanted
    )


def ort_session(path: Path, threads: int) -> Encode:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def openvino_model(path: Path, threads: int) -> Encode:
    import openvino

    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    return lambda x: torch.from_numpy(compiled(x.numpy())[0])


def variants(
    model: Any, tokenizer: Any, workdir: Path, threads: int, with_openvino: bool, with_static: bool = False
) -> dict[str, dict[str, Encode]]:
    """Every variant of each tower, keyed "image"/"text" then by name; texts come already trimmed."""
    int8_all: Any = quantize_torch(copy.deepcopy(model))
    int8_mlp: Any = quantize_torch(copy.deepcopy(model), attention=False)
    out: dict[str, dict[str, Encode]] = {
        "image": {
            "torch fp32": model.encode_image,
            "torch int8 (MLP + attention)": int8_all.encode_image,
            "torch int8 (MLP only)": int8_mlp.encode_image,
        },
        "text": {
            "torch fp32": lambda t: encode_text(model, t, trim=True),
            "torch int8 (MLP + attention)": lambda t: encode_text(int8_all, t, trim=True),
            "torch int8 (MLP only)": lambda t: encode_text(int8_mlp, t, trim=True),
        },
    }
    for kind in ("image", "text"):
        fp32 = export_model(model, tokenizer, kind, kind == "text", workdir / f"{kind}.onnx")
        out[kind]["onnxruntime fp32"] = ort_session(fp32, threads)
        for name, options in ONNX_INT8.items():
            dst = workdir / f"{kind}-{name.replace(' ', '-')}.onnx"
            if options is None:
                quantize_dynamic(
                    fp32, dst, weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul", "Gemm"]
                )
            else:
                quantize_onnx(fp32, dst, **options)
            out[kind][f"onnxruntime int8 {name}"] = ort_session(dst, threads)
        if with_openvino:
            out[kind]["openvino fp32"] = openvino_model(fp32, threads)
            out[kind]["openvino on the ORT int8 u8 file"] = openvino_model(
                workdir / f"{kind}-u8.onnx", threads
            )
        if with_static:
            size = model.visual.image_size
            for name, path in static_int8(fp32, kind, tokenizer, to_pair(size), workdir).items():
                out[kind][f"onnxruntime int8 static {name}"] = ort_session(path, threads)
                if with_openvino and name.startswith("QDQ"):
                    out[kind][f"openvino int8 static {name}"] = openvino_model(path, threads)
    return out


def to_pair(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def min_cosine(encode: Encode, reference: torch.Tensor, inputs: torch.Tensor, batch: int) -> float:
    with torch.inference_mode():
        rows = torch.cat([encode(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])
    cos = torch.nn.functional.cosine_similarity(rows.float(), reference, dim=-1)
    return float(cos.min())


def timed(encode: Encode, x: torch.Tensor, reps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one call, averaged over `reps` after one warm call."""
    with torch.inference_mode():
        encode(x)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(reps):
            encode(x)
        return (time.perf_counter() - wall) / reps, (time.process_time() - cpu) / reps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--samples", type=int, default=64, help="images and texts for the cosine")
    parser.add_argument("--openvino", action="store_true", help="also OpenVINO fp32 and on the int8 file")
    parser.add_argument(
        "--static", action="store_true", help="also static (calibrated) int8, QDQ and QOperator"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = open_clip.create_model(args.arch, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(args.arch)
    size = model.visual.image_size
    images = torch.randn(args.samples, 3, *((size, size) if isinstance(size, int) else size))
    rng = random.Random(0)
    tokens = tokenizer([" ".join(rng.choices(WORDS, k=8)) for _ in range(args.samples)])
    tokens = tokens[:, : token_length(tokens)]
    inputs = {"image": images, "text": tokens}
    with tempfile.TemporaryDirectory() as tmp:
        towers = variants(model, tokenizer, Path(tmp), args.threads, args.openvino, args.static)
        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            k: {n: [] for n in v} for k, v in towers.items()
        }
        cosines = {}
        for kind, tower in towers.items():
            with torch.inference_mode():
                reference = torch.cat([tower["torch fp32"](inputs[kind][i : i + args.batch])
                                       for i in range(0, args.samples, args.batch)])  # fmt: skip
            cosines[kind] = {n: min_cosine(f, reference, inputs[kind], args.batch) for n, f in tower.items()}
        for _ in range(args.rounds):
            for kind, tower in towers.items():
                for name, encode in tower.items():
                    results[kind][name].append(
                        timed(encode, inputs[kind][: args.batch], 2 if kind == "image" else 10)
                    )
    print(report(args, results, cosines))
    return 0


def report(args: argparse.Namespace, results: dict[str, Any], cosines: dict[str, Any]) -> str:
    """The Markdown report: machine and versions, then one table a tower."""
    lines = [
        f"CPU: {cpu_line()}",
        f"torch {torch.__version__}, open_clip {open_clip.__version__}, "
        f"onnxruntime {onnxruntime.__version__}",
        f"{args.arch} random weights, {args.threads} threads, batch {args.batch}, "
        f"{args.rounds} interleaved rounds, min cosine over {args.samples} inputs",
    ]
    for kind, rows in results.items():
        best_wall = min(w for w, _ in rows["torch fp32"])
        best_cpu = min(c for _, c in rows["torch fp32"])
        header = "items/s (best) | vs fp32 (best) | vs fp32 (median) | vs fp32 (CPU time) | min cosine"
        lines += ["", f"| {kind} tower | {header} |", "|---|---|---|---|---|---|"]
        median_fp32 = sorted(w for w, _ in rows["torch fp32"])[len(rows["torch fp32"]) // 2]
        for name, runs in rows.items():
            wall = min(w for w, _ in runs)
            median = sorted(w for w, _ in runs)[len(runs) // 2]
            cpu = min(c for _, c in runs)
            lines.append(
                f"| {name} | {args.batch / wall:.1f} | {best_wall / wall:.2f} | {median_fp32 / median:.2f} "
                f"| {best_cpu / cpu:.2f} | {cosines[kind][name]:.4f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
