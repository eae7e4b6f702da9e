"""The test tiers: a test is `slow` exactly when it starts a process, and the rule is enforced.

- A fixture that starts processes (a predictor, the stack, helm, Prometheus ...) is declared with
  `@process_fixture(...)` instead of `@pytest.fixture(...)`. A test whose own body starts processes
  requests `starts_processes` (usually `pytestmark = pytest.mark.usefixtures("starts_processes")`),
  as does one that gets a process fixture through `request.getfixturevalue` (unseen at collection).
- At collection, every test whose fixture closure holds one of those fixtures is marked `slow`
  (`mark_slow_by_rule`); a hand-written `slow` marker is an error, so the rule is the only source.
- While a test not marked `slow` runs (setup, call, teardown), starting any process (subprocess, exec,
  fork, spawn, os.system) raises `ProcessInFastTest`, and the test fails even if the code under test
  swallowed that error (`ProcessGuard`). So `make test-fast` (`-m "not slow"`) cannot silently run a
  test that starts programs, and a new such test without its declaration fails in every tier.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])
SLOW = "slow"
PROCESS_FIXTURES: set[str] = set()
# Audit events (PEP 578) raised when a process is started or replaced.
PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "os.forkpty"}
)
HOW_TO_DECLARE = (
    "a test that starts processes runs only in the slow tier: start them in a fixture declared with "
    "@process_fixture (tests/support/tiers.py), or, when the test's own body starts them, request the "
    '`starts_processes` fixture (e.g. @pytest.mark.usefixtures("starts_processes"))'
)


class ProcessInFastTest(RuntimeError):
    """A test outside the slow tier started a process."""


def process_fixture(fn: F | None = None, **kwargs: Any) -> Any:
    """`pytest.fixture` for a fixture that starts processes: the tests that use it are `slow`."""

    def declare(f: F) -> Any:
        PROCESS_FIXTURES.add(kwargs.get("name") or f.__name__)
        return pytest.fixture(**kwargs)(f)

    return declare(fn) if fn is not None else declare


def mark_slow_by_rule(items: Iterable[pytest.Item]) -> None:
    """Mark `slow` every test that uses a process fixture; refuse a `slow` marker written by hand."""
    for item in items:
        if item.get_closest_marker(SLOW) is not None:
            raise pytest.UsageError(
                f"{item.nodeid}: `slow` is applied by rule, not by hand; {HOW_TO_DECLARE}"
            )
        uses = PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses:
            item.add_marker(pytest.mark.slow(reason=f"starts processes: {', '.join(sorted(uses))}"))


class ProcessGuard:
    """Refuses process starts while a test outside the slow tier runs, and remembers each attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._test: str | None = None  # the node id of the running fast test, None otherwise
        self._attempts: list[str] = []
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in PROCESS_EVENTS or self._test is None:
            return
        what = f"{event} {args[1] if event == 'subprocess.Popen' else args[0] if args else ''}"
        with self._lock:
            self._attempts.append(what)
        raise ProcessInFastTest(f"{self._test} started a process ({what}): {HOW_TO_DECLARE}")

    def begin(self, item: pytest.Item) -> None:
        """Guard `item` if it is not marked slow."""
        self._attempts = []
        self._test = None if item.get_closest_marker(SLOW) else item.nodeid

    def end(self) -> list[str]:
        """Stop guarding; the process starts the guarded test attempted."""
        self._test = None
        attempts, self._attempts = self._attempts, []
        return attempts
