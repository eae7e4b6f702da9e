"""Reading series off a /metrics page, as the tests of every process do."""

from __future__ import annotations

import re

import httpx


def _series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every series of `name` on the page: its labels and its value."""
    return [
        (dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or "")), float(m["value"]))
        for m in re.finditer(rf"^{name}(?:{{(?P<labels>[^}}]*)}})? (?P<value>\S+)$", text, re.M)
    ]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the series `name{labels}` on a /metrics page (labels in any order; none for an
    unlabelled series), or None."""
    return next((value for found, value in _series(text, name) if found == labels), None)


def scraped(url: str, name: str, **labels: str) -> float:
    """The series `name{labels}` on the /metrics page of the server at `url`; 0.0 when absent."""
    return sample(httpx.get(f"{url}/metrics", timeout=10).text, name, **labels) or 0.0


def total(text: str, name: str) -> float:
    """The sum of every series of `name` on a /metrics page (0 when there is none)."""
    return sum(value for _, value in _series(text, name))
