"""`make docs`: rewrite the generated sections of docs/ and README.md from the code they describe.

A generated section sits between `<!-- BEGIN generated: NAME -->` and `<!-- END generated -->`; NAME is one
of `SECTIONS`. Each is built by introspecting the code: the predictors' argparse parser
(`predictors.settings.build_parser`, KServe's parent parser included), the gateway's pydantic-settings
class, the metric objects of `gateway.metrics`, `predictors.metrics` and `kserve.metrics`, the
PrometheusRule that helm renders from the chart's defaults, the module docstrings, and the committed
benchmark results (bench/results/cpu-full.json). Text outside the markers is left as written. `--check`
rewrites nothing and exits 1 naming each section that differs (the tests run it). When the code no longer
has what a section reads, the script stops with a `DocsError` saying what it looked for, rather than
leaving a row out.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as `python scripts/gen_docs.py`: `docgen` sits beside this file, and the code documented is this
# tree's (ahead of any installed copy).
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]

from docgen import config, layout, monitoring, performance  # noqa: E402
from docgen.common import DocsError  # noqa: E402

SECTIONS: dict[str, Callable[[], str]] = {
    "predictor-flags": config.predictor_flags,
    "kserve-flags": config.kserve_flags,
    "gateway-env": config.gateway_env,
    "gateway-metrics": monitoring.gateway_metrics,
    "predictor-metrics": monitoring.predictor_metrics,
    "alerts": monitoring.alerts,
    "layout": layout.modules,
    "performance": performance.table,
}
FILES = ("README.md", "docs/*.md")
BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- END generated -->)", re.DOTALL
)


def files(root: Path = ROOT) -> list[Path]:
    """The Markdown files that may hold generated sections."""
    return sorted(p for pattern in FILES for p in root.glob(pattern))


def regenerate(text: str, built: dict[str, str], where: str) -> str:
    """`text` with the body of every generated section replaced by what `built` holds for its name."""

    def body(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in built:
            raise DocsError(f"{where}: unknown generated section {name!r} (known: {', '.join(SECTIONS)})")
        return match[1] + built[name].rstrip("\n") + "\n" + match[4]

    if text.count("<!-- BEGIN generated:") != text.count("<!-- END generated -->"):
        raise DocsError(f"{where}: a BEGIN generated marker without its END (or the reverse)")
    return BLOCK.sub(body, text)


def build_all() -> dict[str, str]:
    """Every section's Markdown, built from the code with no CLIP_*/GATEWAY_* variables set."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(config.ENV_PREFIXES)}
    for key in saved:
        del os.environ[key]
    try:
        return {name: make() for name, make in SECTIONS.items()}
    finally:
        os.environ.update(saved)


def run(check: bool, root: Path = ROOT) -> list[str]:
    """Rewrite (or with `check`, compare) each file's sections; returns the files that differ."""
    built = build_all()
    stale = []
    for path in files(root):
        text = path.read_text()
        fresh = regenerate(text, built, str(path.relative_to(root)))
        if fresh != text:
            stale.append(str(path.relative_to(root)))
            if not check:
                path.write_text(fresh)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    args = parser.parse_args(argv)
    try:
        stale = run(args.check)
    except DocsError as exc:
        print(f"gen_docs: {exc}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"gen_docs: out of date, run `make docs`: {', '.join(stale)}", file=sys.stderr)
        return 1
    for name in stale:
        print(f"gen_docs: rewrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
