"""A short soak of the real stack (the same code as `make soak`): about a minute of mixed valid and
invalid traffic at concurrency 16, with no request getting a status other than its own and no
process's memory growing by 10% or more after the warm-up."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from types import ModuleType

from devtools.procs import ROOT
from tests.support.reliability import API_KEY
from tests.support.stack import LocalStack

SECONDS = 60.0
WARMUP_S = 15.0
CONCURRENCY = 16


def soak_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module
    spec.loader.exec_module(module)
    return module


def test_a_minute_of_mixed_traffic_has_no_unexpected_answer_and_no_memory_growth(stack: LocalStack) -> None:
    soak = soak_script()
    pids = {job: s.proc.pid for job, s in stack.servers.items() if s.proc is not None}
    headers = {"authorization": f"Bearer {API_KEY}"}
    report = asyncio.run(soak.soak(stack.gateway_url, pids, SECONDS, CONCURRENCY, 5.0, headers))
    growth = soak.rss_growth(report, WARMUP_S)
    print(soak.markdown(report, growth))  # shown with -rP
    assert report["unexpected"] == {}, report["unexpected"]
    assert set(report["by_code"]) == {"200", "400", "413", "415", "422"}, report["by_code"]
    assert report["requests"] > 10 * SECONDS, report["requests"]
    assert all(g < 1.10 for g in growth.values()), growth
    assert all(s.proc is not None and s.proc.poll() is None for s in stack.servers.values())
