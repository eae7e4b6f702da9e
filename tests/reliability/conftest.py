"""The real stacks of the reliability tests: both predictors on a tiny CLIP and the gateway, on 127.0.0.1.

Two stacks, each started once for the package and always stopped: `stack` as deployed (API keys on,
default limits) for the corpus, the fuzzer and the soak; `tight_stack` with small bounds (predictor
timeout, queue, gateway concurrency) for faults and overload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import write_tiny_model
from tests.support.stack import LocalStack, plan_stack, start_stack

API_KEY = "reliability-key-0123456789"
TIMEOUT_S = 2.0  # PREDICTOR_TIMEOUT_S of the tight stack
QUEUE = 8  # --max_queue_items (and --max_items) of its predictors
CONCURRENCY = 16  # GATEWAY_MAX_CONCURRENCY of its gateway


@pytest.fixture(scope="package")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def started(
    model_dir: Path, logs: Path, predictor_args: tuple[str, ...] = (), **gateway_env: str
) -> LocalStack:
    """The three programs, predictors with extra flags, the gateway with extra environment."""
    stack = plan_stack(model_dir, logs)
    for job in ("clip-image", "clip-text"):
        stack.servers[job].argv = [*stack.servers[job].argv, *predictor_args]
    stack.servers["clip-gateway"].env.update(gateway_env)
    return start_stack(stack)


@pytest.fixture(scope="package")
def stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = started(tiny_dir, tmp_path_factory.mktemp("logs"), GATEWAY_API_KEYS=API_KEY)
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="package")
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
