"""The README's performance table, from the committed benchmark results (`bench.readme`)."""

from __future__ import annotations

from pathlib import Path

from bench import readme

ROOT = Path(__file__).resolve().parents[2]


def table() -> str:
    return readme.section(ROOT / "bench" / "results")
