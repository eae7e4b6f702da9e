"""The README's performance table, generated from the committed result files (`make docs` writes it).

For each full run in bench/results/ (`cpu-full.json`, and `cuda-full.json` once a GPU run is recorded):
the machine it ran on, one row a ratio with its goal, the plot and a link to the whole result. Nothing
in the table is typed by hand: a new run and `make docs` rewrite it, and the docs test fails while the
README differs from the committed JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import breakdown, machine

RESULTS = ("cpu-full", "cuda-full")


def _value(what: str, value: float | None) -> str:
    """A ratio as 0.93x, a time or CPU figure (its name says ms) as 1.20 ms."""
    if value is None:
        return "not measured"
    return f"{value:.2f} ms" if "ms" in what else f"{value:.2f}x"


def _rows(model: dict[str, Any]) -> list[str]:
    rows = []
    for t in breakdown.targets(model):
        met = {True: " (met)", False: " (not met)", None: ""}[t["passed"]]
        rows.append(
            f"| {model['name']} | {t['what']} | {_value(t['what'], t['value'])} | {t['target']}{met} |"
        )
    ratios = model["ratios"]
    extras = {
        "service p50 - in-process p50 at concurrency 1, ms": ratios.get(
            "service p50 - in-process p50 at concurrency 1 (ms)"
        ),
        "in-process, default choice / best choice": ratios.get(
            "in-process limit, default choice / best choice"
        ),
        "zero-shot pairs/s, text cache on / off": ratios.get("zero-shot pairs/s, cache on / cache off"),
    }
    for what, v in extras.items():
        rows.append(f"| {model['name']} | {what} | {_value(what, v)} | |")
    return rows


def table(result: dict[str, Any], stem: str) -> str:
    """One run's section: machine, ratio table, plot, link (paths relative to the repository root)."""
    lines = [
        f"Machine: {machine.describe(result['machine'])}.",
        "",
        "| model | measure | value | goal |",
        "|---|---|---|---|",
    ]
    for model in result["models"]:
        lines += _rows(model)
    lines += [
        "",
        f"![throughput and p95 latency against concurrency](bench/results/{stem}.png)",
        "",
        f"Full results: [bench/results/{stem}.md](bench/results/{stem}.md) (every point, every engine "
        f"choice, the rounds; the raw numbers in [{stem}.json](bench/results/{stem}.json)).",
    ]
    return "\n".join(lines) + "\n"


def section(results: Path) -> str:
    """Every recorded full run's table, CPU first."""
    parts = [
        (f"### {stem}\n\n" if stem != "cpu-full" else "") + table(json.loads(path.read_text()), stem)
        for stem in RESULTS
        if (path := results / f"{stem}.json").is_file()
    ]
    return "\n".join(parts) if parts else "No full benchmark run is recorded yet: run `make bench`.\n"
