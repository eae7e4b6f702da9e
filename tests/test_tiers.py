"""The slow tier is a rule: process fixtures make a test slow, and a fast test that starts a process fails.

Each case runs a small suite with this project's conftest hooks in a pytest of its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devtools.procs import PYTHON, ROOT

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests run pytest

SUITE = """
import subprocess

import pytest

from tests.support.tiers import process_fixture


@process_fixture
def program():
    subprocess.run(["true"], check=True)


def test_uses_a_process_fixture(program):
    pass


@pytest.mark.usefixtures("starts_processes")
def test_declares_its_own_processes():
    subprocess.run(["true"], check=True)


def test_in_process():
    assert sum([1, 1]) == 2


def test_starts_a_process_undeclared():
    subprocess.run(["true"], check=True)


def test_swallows_the_refusal():
    try:
        subprocess.run(["true"], check=True)
    except Exception:
        pass
"""

HAND_MARKED = """
import pytest


@pytest.mark.slow
def test_marked_by_hand():
    pass
"""


def pytest_in(folder: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on `source` as the only test module of `folder`, with this suite's conftest hooks."""
    (folder / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: starts processes\n")
    (folder / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (folder / "test_inner.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "--rootdir", str(folder), *args]
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)


def outcomes(output: str) -> dict[str, set[str]]:
    """test name -> the outcomes -rA reports for it (PASSED, FAILED, ERROR)."""
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        word, _, rest = line.partition(" test_inner.py::")
        if rest:
            found.setdefault(rest.split(" ")[0], set()).add(word)
    return found


def test_a_process_fixture_makes_a_test_slow_and_an_undeclared_process_fails(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, SUITE)
    got = outcomes(done.stdout)
    assert got["test_uses_a_process_fixture"] == {"PASSED"}, done.stdout
    assert got["test_declares_its_own_processes"] == {"PASSED"}, done.stdout
    assert got["test_in_process"] == {"PASSED"}, done.stdout
    assert "FAILED" in got["test_starts_a_process_undeclared"], done.stdout
    assert "starts_processes" in done.stdout  # the failure says how to declare it
    # The refusal, caught by the code under test, still fails the test (at teardown).
    assert got["test_swallows_the_refusal"] >= {"PASSED", "ERROR"}, done.stdout


def test_the_fast_tier_leaves_out_exactly_the_tests_that_start_processes(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, SUITE, "-m", "not slow")
    got = outcomes(done.stdout)
    assert "test_uses_a_process_fixture" not in got and "test_declares_its_own_processes" not in got
    assert got["test_in_process"] == {"PASSED"}
    assert "2 deselected" in done.stdout, done.stdout


def test_a_slow_marker_written_by_hand_is_refused(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, HAND_MARKED)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "`slow` is applied by rule, not by hand" in done.stdout + done.stderr
