"""The benchmark's Markdown table and PNG plot from its JSON result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import machine

LINES = (
    ("batched", "service, batching on"),
    ("unbatched", "service, batching off (--max_batch_size 1, no shared predictor calls)"),
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


def _limit(bound: dict[str, Any]) -> list[str]:
    """The limit, and each choice's best (the default's too), one line each."""
    out = [
        f"In-process limit: {bound['best_pairs_per_s']:.1f} pairs/s with {bound.get('best_choice', 'torch')}"
        f" at batch {bound['best_batch']}, {bound['best_config']} ({bound['cpu_s_per_pair'] * 1000:.1f} ms"
        f" CPU a pair); one pair p50 {bound['p50_ms_one_pair']:.1f} ms ({bound['one_pair_config']}); peak"
        f" RSS {bound['peak_rss_mb']:.0f} MB.",
        "",
    ]
    for label, per in bound.get("choices", {"the project's path": bound}).items():
        what = f"default (chose {per['choice']})" if label == "auto" else label
        bests = "; ".join(_best(name, b) for name, b in per["configs"].items())
        out.append(f"- {what}: {per['best_pairs_per_s']:.1f} pairs/s; {bests}")
    return out


def _verdict(verdict: dict[str, Any]) -> list[str]:
    """The default against each forced choice: items/s per tower and workload, ratio, pass or fail."""
    labels = list(next(iter(verdict["cases"].values()))["items_per_s"])
    chosen = verdict["default_chose"]
    chose = chosen if isinstance(chosen, str) else ", ".join(f"{k} {v}" for k, v in chosen.items())
    out = [
        "",
        f"Default (chose {chose}) against each forced choice, items/s, medians of interleaved rounds, "
        f"each tower as its predictor runs it (pass: the default at least {verdict['within']:g}x the best "
        "forced one, by the median of their ratios round by round; in brackets the interval of that "
        "median and its coverage):",
        "",
        "| tower, workload | " + " | ".join(labels) + " | default / best forced | verdict |",
        "|---|" + "---|" * (len(labels) + 2),
    ]
    for case, c in verdict["cases"].items():
        rates = " | ".join(f"{c['items_per_s'][label]:.1f}" for label in labels)
        what = f"{case} ({c['workload']})" if "workload" in c else case
        ratio = f"{c['default_over_best']:.3f}"
        if "interval" in c:
            low, high = c["interval"]
            ratio += f" ({low:.2f}-{high:.2f}, {c['interval_coverage']:.0%})"
        out.append(f"| {what} | {rates} | {ratio} | {case_verdict(c)} |")
    return out


def case_verdict(case: dict[str, Any]) -> str:
    """pass, FAIL, or FAIL within the noise (the interval of the default's ratio reaches the bound)."""
    if case["passed"]:
        return "pass"
    if case.get("slower_beyond_noise", True):
        return "FAIL"
    return "FAIL (within the noise: the interval reaches the bound)"


def _choices(model: dict[str, Any]) -> list[str]:
    """The engine each predictor chose, the default-vs-forced verdict and int8 against fp32."""
    out = [""]
    for kind, choice in model.get("service_choice", {}).items():
        out.append(f"Service {kind} predictor: {machine.describe_choice(choice)}.")
    if model.get("default_vs_forced"):
        out += _verdict(model["default_vs_forced"])
    int8 = model.get("int8")
    if int8:
        cosine = "not measured" if int8["min_cosine"] is None else f"{int8['min_cosine']:.4f}"
        out += [
            "",
            f"int8: {int8['limit']['best_pairs_per_s']:.1f} pairs/s in-process ({int8['best_choice']}), "
            f"{int8['speedup']:.2f}x the fp32 limit, min cosine to fp32 {cosine}.",
        ]
    return out


def _breakdown(model: dict[str, Any]) -> list[str]:
    """CPU ms a /compare/ of each process at the top concurrency, and outside the model work."""
    b = model.get("breakdown")
    if not b:
        return []
    cpu = b["cpu_ms"]
    return [
        "",
        f"CPU a /compare/ at concurrency {b['concurrency']} (ms): gateway {cpu['gateway']:.2f}, image "
        f"predictor {cpu['image']:.2f}, text predictor {cpu['text']:.2f}, load generator "
        f"{cpu['loadgen']:.2f}; the service {b['service_cpu_ms']:.2f} against {b['model_cpu_ms']:.2f} of "
        f"model work in-process (decode, preprocess, encode of one pair): {b['outside_model_cpu_ms']:.2f} "
        "outside the model work.",
    ]


def _targets(model: dict[str, Any]) -> list[str]:
    if not model.get("targets"):
        return []
    out = ["", "| target | value | goal | met |", "|---|---|---|---|"]
    for t in model["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.3g}"
        met = {True: "yes", False: "NO", None: "-"}[t["passed"]]
        out.append(f"| {t['what']} | {value} | {t['target']} | {met} |")
    return out


def markdown(result: dict[str, Any]) -> str:
    out = [f"# Benchmark `{result['name']}`", "", f"Machine: {machine.describe(result['machine'])}", ""]
    ceiling = result["loadgen_ceiling"]
    out.append(
        f"Load generator ceiling (GET /healthz, concurrency {ceiling['concurrency']}): "
        f"{ceiling['requests_per_s']:.0f} requests/s."
    )
    for model in result["models"]:
        bound = model["in_process"]
        out += ["", f"## {model['name']} ({model['arch']})", "", *_limit(bound), *_choices(model), ""]
        out += [
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
        out += _breakdown(model) + _targets(model)
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
        top.plot(xs, [limit] * len(xs), linestyle="--", label="in-process limit (best choice and batch)")
        default = model["in_process"].get("choices", {}).get("auto")
        if default:
            top.plot(
                xs, [default["best_pairs_per_s"]] * len(xs), linestyle=":", label="in-process, default choice"
            )
        one = model["in_process"]["p50_ms_one_pair"]
        bottom.plot(xs, [one] * len(xs), linestyle="--", label="in-process, one pair (p50)")
        top.set(title=f"{model['name']}: throughput", xlabel="concurrency", ylabel="pairs/s", xscale="log")
        bottom.set(title=f"{model['name']}: p95 latency", xlabel="concurrency", ylabel="ms", xscale="log")
        bottom.set_yscale("log")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    title = f"POST /compare/, one distinct short text a request ({machine.short(result['machine'])})"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
