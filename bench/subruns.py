"""The in-process measurements of a benchmark run: the limit, the int8 limit, the default vs each choice.

Each runs in a subprocess of its own (fresh memory, the whole machine's threads): `bench.inprocess`
for the limits, `bench.choices` for the default against each forced choice. Each prints one JSON
object, returned here as a dict."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from typing import Any

from devtools.procs import ROOT, term_with_parent


def _run(module: str, flags: list[str], args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    model_flags = shlex.join(flags + shlex.split(args.predictor_args))
    argv = [sys.executable, "-m", module, "--model-flags", model_flags, "--device", args.device, *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600, env=env,
        preexec_fn=term_with_parent,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def in_process(flags: list[str], args: argparse.Namespace, again: dict[str, Any] | None = None,
               precision: str = "auto") -> dict[str, Any]:  # fmt: skip
    """The limit over every choice (`bench.inprocess`); `again`: an earlier result, to re-measure its
    best choice, config and batch only."""
    extra = ["--repeats", "2" if args.quick else "3", "--precision", precision]
    if again is None:
        extra += ["--batches", args.batches] + (["--skip-decoding"] if precision != "auto" else [])
    else:
        extra += ["--batches", str(again["best_batch"]), "--only-config", again["best_config"],
                  "--choices", again["best_choice"], "--skip-decoding"]  # fmt: skip
    return _run("bench.inprocess", flags, args, extra)


def int8(flags: list[str], args: argparse.Namespace, fp32: dict[str, Any]) -> dict[str, Any]:
    """The int8 limit (every int8 choice), against the fp32 limit `fp32` of the same run."""
    limit = in_process(flags, args, precision="int8")
    best = limit["choices"][limit["best_choice"]]
    return {
        "limit": limit,
        "best_choice": limit["best_choice"],
        "speedup": limit["best_pairs_per_s"] / fp32["best_pairs_per_s"],
        "min_cosine": best.get("min_cosine_to_fp32"),
    }


def choices(flags: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The default against every forced choice, both towers, interleaved rounds (`bench.choices`)."""
    # Whole cycles of `balanced_order` over five choices.
    rounds, min_s = ("10", "0.08") if args.quick else ("20", "0.25")
    extra = ["--batch", "16", "--rounds", rounds, "--min-s", min_s]
    return _run("bench.choices", flags, args, extra)
