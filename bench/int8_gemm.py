"""The int8 ceiling of this CPU: one matrix multiply of a transformer layer, fp32 against int8 kernels.

python -m bench.int8_gemm [--m 800] [--k 768] [--n 3072] [--threads 1] [--rounds 7]

The default shape is ViT-B-32's MLP input layer at an image batch of 16 (16 x 50 tokens, width 768,
hidden 3072): the matrix multiplies that int8 replaces take most of a tower's time, so their kernels
bound what int8 can gain on the whole tower. Timed, interleaved round after round, each by its best
round: ONNX Runtime's fp32 MatMul; its MatMulInteger with unsigned and with signed 8-bit weights (the
int8 kernel alone, activations already 8-bit); its DynamicQuantizeMatMul (what `quantize_onnx` files
run: the activation quantized per pass, then the int8 kernel); torch's fp32 Linear and fbgemm dynamic
int8 Linear. Prints a Markdown table, each row's speed as a ratio to ONNX Runtime fp32.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime
import torch
from onnx import TensorProto, helper, numpy_helper


def session(nodes: list[Any], weights: dict[str, np.ndarray], x: Any, threads: int, out_type: int) -> Any:
    """An ONNX Runtime session of a one-node graph on input `X` (shape and type of `x`), output `Y`."""
    x_type = TensorProto.UINT8 if x.dtype == np.uint8 else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "gemm", [helper.make_tensor_value_info("X", x_type, list(x.shape))],
        [helper.make_tensor_value_info("Y", out_type, None)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    model = helper.make_model(graph, opset_imports=opsets)
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def bind(ort_session: Any, feed: Any) -> Callable[[], Any]:
    return lambda: ort_session.run(None, {"X": feed})


def kernels(m: int, k: int, n: int, threads: int) -> dict[str, Callable[[], Any]]:
    """Each kernel, as a call on fixed inputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32)
    x_u8 = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
    scale = float(np.abs(w).max()) / 127
    w_s8 = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    w_u8 = (w_s8.astype(np.int16) + 128).astype(np.uint8)
    u8_zero, s8_zero = np.array(128, np.uint8), np.array(0, np.int8)
    integer = ["X", "W", "xz", "wz"]
    runs = {
        "onnxruntime fp32 MatMul": (session(
            [helper.make_node("MatMul", ["X", "W"], ["Y"])], {"W": w}, x, threads, TensorProto.FLOAT), x),
        "onnxruntime MatMulInteger u8 x u8": (session(
            [helper.make_node("MatMulInteger", integer, ["Y"])], {"W": w_u8, "xz": u8_zero, "wz": u8_zero},
            x_u8, threads, TensorProto.INT32), x_u8),
        "onnxruntime MatMulInteger u8 x s8": (session(
            [helper.make_node("MatMulInteger", integer, ["Y"])], {"W": w_s8, "xz": u8_zero, "wz": s8_zero},
            x_u8, threads, TensorProto.INT32), x_u8),
        "onnxruntime DynamicQuantizeMatMul u8": (session(
            [helper.make_node("DynamicQuantizeMatMul", ["X", "W", "s", "wz"], ["Y"], domain="com.microsoft")],
            {"W": w_u8, "s": np.array(scale, np.float32), "wz": u8_zero}, x, threads, TensorProto.FLOAT), x),
    }  # fmt: skip
    out: dict[str, Callable[[], Any]] = {name: bind(s, feed) for name, (s, feed) in runs.items()}
    linear = torch.nn.Linear(k, n).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces that eager quantization moves to torchao
        quantized = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(torch.nn.Linear(k, n)), {torch.nn.Linear}
        )
    x_torch = torch.from_numpy(x)
    out["torch fp32 Linear"] = lambda: linear(x_torch)
    out["torch fbgemm dynamic int8 Linear"] = lambda: quantized(x_torch)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_gemm", description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=800, help="rows: batch x tokens")
    parser.add_argument("--k", type=int, default=768)
    parser.add_argument("--n", type=int, default=3072)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    calls = kernels(args.m, args.k, args.n, args.threads)
    best = dict.fromkeys(calls, float("inf"))
    with torch.inference_mode():
        for call in calls.values():
            call()
        for _ in range(args.rounds):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                call()
                best[name] = min(best[name], (time.perf_counter() - started) / 2)
    load = os.getloadavg()[0]
    print(
        f"{args.m}x{args.k} @ {args.k}x{args.n}, {args.threads} thread(s), best of {args.rounds} rounds, "
        f"load average {load:.1f}; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    print("\n| kernel | ms (best) | G multiply-adds/s | vs onnxruntime fp32 |\n|---|---|---|---|")
    fp32 = best["onnxruntime fp32 MatMul"]
    for name, seconds in best.items():
        macs = args.m * args.k * args.n / seconds / 1e9
        print(f"| {name} | {seconds * 1e3:.1f} | {macs:.1f} | {fp32 / seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
