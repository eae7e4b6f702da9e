"""`python -m bench.client`, a few calls: both clients measured, a table and a ratio written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.procs import ROOT

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs


def test_client_benchmark_writes_both_rows_and_a_ratio(tmp_path: Path) -> None:
    out = tmp_path / "client.md"
    argv = [sys.executable, "-m", "bench.client", "--calls", "40", "--concurrency", "8", "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) \|$", text, re.M)
    assert [r[0] for r in rows] == ["httpx's own pool (httpcore)", "aiohttp transport (gateway)"]
    assert all(float(x) > 0 for r in rows for x in r[1:])
    ratio = re.search(r"aiohttp transport: ([\d.]+)x", text)
    assert ratio is not None and float(ratio.group(1)) > 0
