"""Reading one series off a /metrics page, as the tests of every process do."""

from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the series `name{labels}` on a /metrics page (labels in any order), or None."""
    for m in re.finditer(rf"^{name}{{(?P<labels>[^}}]*)}} (?P<value>\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        if found == labels:
            return float(m["value"])
    return None
