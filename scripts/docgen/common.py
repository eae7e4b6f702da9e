"""What every section builder shares: the error for code that moved, and Markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class DocsError(Exception):
    """The code no longer has what a generated section reads: the message says what was looked for."""


def cell(value: object) -> str:
    """One table cell: pipes escaped, newlines folded."""
    return " ".join(str(value).split()).replace("|", "\\|")


def code(value: object) -> str:
    return f"`{value}`"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; a builder that finds no row at all is broken, so that is an error."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if len(lines) == 2:
        raise DocsError(f"a table ({', '.join(header)}) came out empty")
    return "\n".join(lines) + "\n"
