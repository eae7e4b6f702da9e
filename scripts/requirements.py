"""Print the pinned requirements of one of pyproject.toml's extras, one a line.

pyproject.toml is the one place that pins versions; the Makefile and the Dockerfiles read the pins
through this script instead of repeating them, e.g. `python requirements.py predictor torch torchvision`
prints only the torch and torchvision pins (installed first, together, in their own image layer).
Standard library only: it runs in a bare base image before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirements(pyproject: Path, extra: str, only: list[str]) -> list[str]:
    """The extra's requirement strings, restricted to the named projects when `only` is given."""
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    if extra not in extras:
        raise SystemExit(f"requirements: no extra {extra!r} in {pyproject} (have: {', '.join(extras)})")
    reqs: list[str] = extras[extra]
    if not only:
        return reqs
    wanted = {n.lower() for n in only}
    picked = [r for r in reqs if (m := NAME.match(r)) and m.group(1).lower() in wanted]
    if len(picked) != len(wanted):
        raise SystemExit(f"requirements: extra {extra!r} does not pin all of {', '.join(only)}")
    return picked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extra", help="the optional-dependencies group, e.g. predictor")
    parser.add_argument("only", nargs="*", help="print only these projects' pins")
    default = Path(__file__).resolve().parents[1] / "pyproject.toml"
    parser.add_argument("--pyproject", type=Path, default=default, help="the pyproject.toml to read")
    args = parser.parse_args(argv)
    sys.stdout.write("".join(f"{r}\n" for r in requirements(args.pyproject, args.extra, args.only)))


if __name__ == "__main__":
    main()
