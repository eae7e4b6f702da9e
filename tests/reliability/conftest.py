"""The real stacks of the reliability tests: both predictors on the tiny CLIP and the gateway, on 127.0.0.1.

Two stacks, each started once for the package and always stopped: `stack` as deployed (API keys on,
default limits) for the corpus, the fuzzer and the soak; `tight_stack` with small bounds (predictor
timeout, queue, gateway concurrency; tests/support/reliability.py) for faults and overload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reliability import API_KEY, CONCURRENCY, QUEUE, TIMEOUT_S, started
from tests.support.stack import LocalStack
from tests.support.tiers import process_fixture


@process_fixture(scope="package")
def stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = started(tiny_dir, tmp_path_factory.mktemp("logs"), GATEWAY_API_KEYS=API_KEY)
    try:
        yield stack
    finally:
        stack.stop_all()


@process_fixture(scope="package")
def tight_stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = started(
        tiny_dir,
        tmp_path_factory.mktemp("logs"),
        ("--max_items", str(QUEUE), "--max_queue_items", str(QUEUE), "--max_batch_delay_ms", "20"),
        PREDICTOR_TIMEOUT_S=str(TIMEOUT_S),
        GATEWAY_MAX_CONCURRENCY=str(CONCURRENCY),
    )
    try:
        yield stack
    finally:
        stack.stop_all()
