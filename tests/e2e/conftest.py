"""The whole system as a user runs it: both predictors on the demo model, and the gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.models import DEMO_MODEL_DIR
from tests.support.stack import LocalStack, plan_stack, start_stack
from tests.support.tiers import process_fixture


@process_fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The three programs on free ports, serving the committed demo model."""
    stack = start_stack(plan_stack(DEMO_MODEL_DIR, tmp_path_factory.mktemp("e2e-logs")))
    try:
        yield stack
    finally:
        stack.stop_all()
