"""The benchmark's Markdown table and PNG plot from its JSON result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LINES = (
    ("batched", "service, batching on"),
    ("unbatched", "service, batching off (--max_batch_size 1, no text sharing)"),
)
# Ratio names (prefixes) that are medians of the rounds, and the round key of each.
MEDIANS = {
    "service pairs/s at concurrency": "service / limit",
    "batching on / batching off": "on / off",
    "zero-shot pairs/s": "cache on / off",
}


def _row(label: str, point: dict[str, Any], pairs: int) -> str:
    cpu = point["cpu_s_per_request"]
    return (
        f"| {label} | {point['concurrency']} | {point['requests_per_s']:.1f} | "
        f"{point['requests_per_s'] * pairs:.1f} | {point['p50_ms']:.0f} | {point['p95_ms']:.0f} | "
        f"{point['p99_ms']:.0f} | {sum(cpu.values()) * 1000:.0f} | {point['errors']} |"
    )


def _best(config: str, per_batch: dict[str, dict[str, float]]) -> str:
    b = max(per_batch, key=lambda k: per_batch[k]["pairs_per_s"])
    return f"{config}: {per_batch[b]['pairs_per_s']:.1f} (batch {b})"


def markdown(result: dict[str, Any]) -> str:
    out = [f"# Benchmark `{result['name']}`", "", f"Machine: {result['machine']}", ""]
    ceiling = result["loadgen_ceiling"]
    out.append(
        f"Load generator ceiling (aiohttp, GET /healthz, concurrency {ceiling['concurrency']}): "
        f"{ceiling['requests_per_s']:.0f} requests/s."
    )
    for model in result["models"]:
        bound = model["in_process"]
        out += [
            "",
            f"## {model['name']} ({model['arch']})",
            "",
            f"In-process limit: {bound['best_pairs_per_s']:.1f} pairs/s at batch {bound['best_batch']}, "
            f"{bound['best_config']} ({bound['cpu_s_per_pair'] * 1000:.1f} ms CPU a pair); one pair p50 "
            f"{bound['p50_ms_one_pair']:.1f} ms ({bound['one_pair_config']}); {bound['device']} "
            f"{bound['precision']} ({bound.get('cpu_kernels', 'torch')} linear kernels); peak RSS "
            f"{bound['peak_rss_mb']:.0f} MB. Best pairs/s of each config "
            ": " + "; ".join(_best(name, per) for name, per in bound["configs"].items()) + ".",
            "",
            "| run | concurrency | req/s | pairs/s | p50 ms | p95 ms | p99 ms | CPU ms/req | errors |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, label in LINES:
            out += [_row(label, p, 1) for p in model[key]]
        for key in ("zero_shot_cached", "zero_shot_uncached"):
            out.append(_row(f"zero-shot, 10 texts, {key.removeprefix('zero_shot_')}", model[key], 10))
        rounds = model["rounds"]
        out += ["", "Ratios (same run):", ""]
        for k, v in model["ratios"].items():
            in_rounds = next((r for prefix, r in MEDIANS.items() if k.startswith(prefix)), None)
            if in_rounds and len(rounds) > 1:
                each = ", ".join(f"{r[in_rounds]:.2f}" for r in rounds)
                out.append(f"- {k}: {v:.2f} (median of {len(rounds)} interleaved rounds: {each})")
            else:
                out.append(f"- {k}: {v:.2f}")
        if len(rounds) > 1:
            out += [
                "",
                "| round | in-process limit | batching on | batching off | zero-shot cached | uncached |",
            ]
            out.append("|---|---|---|---|---|---|")
            for i, r in enumerate(rounds, 1):
                rates = " | ".join(f"{r[k]:.1f}" for k in ("limit", "on", "off", "cached", "uncached"))
                out.append(f"| {i} | {rates} |")
            out.append("")
            out.append(
                "(pairs/s for the limit and batching on / off; requests/s for zero-shot, 10 pairs each)"
            )
        rd = bound["reduced_decoding"]
        out += [
            "",
            f"Reduced-scale decoding of a {rd['image']}: {rd['full_decode_ms']:.0f} ms -> "
            f"{rd['reduced_decode_ms']:.0f} ms decode + preprocess ({rd['speedup']:.1f}x), "
            f"embedding cosine >= {rd['min_cosine']:.5f}.",
            "",
            "Peak RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in model["peak_rss_mb"].items()) + ".",
        ]
    return "\n".join(out) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    fig, axes = plt.subplots(2, len(models), figsize=(6 * len(models), 8), squeeze=False)
    for col, model in enumerate(models):
        top, bottom = axes[0][col], axes[1][col]
        for key, label in LINES:
            xs = [p["concurrency"] for p in model[key]]
            top.plot(xs, [p["requests_per_s"] for p in model[key]], marker="o", label=label)
            bottom.plot(xs, [p["p95_ms"] for p in model[key]], marker="o", label=label)
        xs = [p["concurrency"] for p in model["batched"]]
        limit = model["in_process"]["best_pairs_per_s"]
        top.plot(xs, [limit] * len(xs), linestyle="--", label="in-process limit (best batch)")
        one = model["in_process"]["p50_ms_one_pair"]
        bottom.plot(xs, [one] * len(xs), linestyle="--", label="in-process, one pair (p50)")
        top.set(title=f"{model['name']}: throughput", xlabel="concurrency", ylabel="pairs/s", xscale="log")
        bottom.set(title=f"{model['name']}: p95 latency", xlabel="concurrency", ylabel="ms", xscale="log")
        bottom.set_yscale("log")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"POST /compare/, one distinct short text a request ({result['machine']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
