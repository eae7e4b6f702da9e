"""The README's module list: every module of the project's code folders, one line each from its docstring."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .common import DocsError

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("predictors", "gateway", "devtools", "bench", "demo", "scripts")


def sources(root: Path = ROOT) -> list[Path]:
    """The Python modules and shell scripts under `FOLDERS`, in folder then path order."""
    found = []
    for folder in FOLDERS:
        paths = [*(root / folder).rglob("*.py"), *(root / folder).glob("*.sh")]
        found += sorted(p for p in paths if "__pycache__" not in p.parts)
    return found


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, or of a shell script's header comment."""
    if path.suffix == ".py":
        text = ast.get_docstring(ast.parse(path.read_text())) or ""
    else:
        # The header comment up to its first line that ends a sentence or opens a list.
        header = []
        for line in path.read_text().splitlines()[1:]:
            if not line.startswith("#"):
                break
            header.append(line.lstrip("# ").strip())
            if header[-1].endswith((".", ":")):
                break
        text = " ".join(header)
    paragraph = " ".join(text.split("\n\n")[0].split()).rstrip(":")
    if not paragraph:
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise DocsError(f"{where} has no docstring (or header comment) to list it by")
    return re.split(r"(?<=\.)\s+(?=[A-Z`(])", paragraph)[0]


def modules() -> str:
    """A nested Markdown list: each folder, then each module with its one-line summary."""
    lines: list[str] = []
    folder = None
    for path in sources():
        rel = path.relative_to(ROOT)
        if rel.parts[0] != folder:
            folder = rel.parts[0]
            lines.append(f"- **`{folder}/`**")
        lines.append(f"  - `{rel.relative_to(folder).as_posix()}`: {summary(path)}")
    return "\n".join(lines) + "\n"
