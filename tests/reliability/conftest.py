"""The real stack for the reliability tests: both predictors on a tiny CLIP and the gateway, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import write_tiny_model
from tests.support.stack import LocalStack, plan_stack, start_stack

API_KEY = "reliability-key-0123456789"


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


@pytest.fixture(scope="module")
def stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack with API keys on, started once per module and always stopped."""
    stack = started(tiny_dir, tmp_path_factory.mktemp("logs"), GATEWAY_API_KEYS=API_KEY)
    try:
        yield stack
    finally:
        stack.stop_all()
