"""Fixtures for the image tests: they need podman and the images `make images` builds.

These tests run only when named (`make test-images`, which `.ci/run` runs); a missing podman or image
fails them, it never skips them.
"""

from __future__ import annotations

import pytest

from tests.images.podman import GATEWAY_IMAGE, PREDICTOR_CPU_IMAGE, PREDICTOR_IMAGE, image_size, require_image
from tests.support.tiers import process_fixture


@process_fixture(scope="session", autouse=True)
def images() -> dict[str, str]:
    """The three images under test, after checking that each is built (with podman: every image test
    starts processes, so all of them are in the slow tier)."""
    for image in (PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE, GATEWAY_IMAGE):
        require_image(image)
    return {"predictor": PREDICTOR_IMAGE, "predictor-cpu": PREDICTOR_CPU_IMAGE, "gateway": GATEWAY_IMAGE}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the size of each image under test after the results."""
    terminalreporter.section("image sizes")
    for image in (PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE, GATEWAY_IMAGE):
        try:
            terminalreporter.write_line(f"{image}: {image_size(image) / 1e6:.0f} MB")
        except RuntimeError as e:
            terminalreporter.write_line(f"{image}: {e}")
