"""Settings come from the environment once; bad values stop the start with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.procs import ROOT
from gateway.settings import Settings


def test_environment_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_PREDICTOR_URL", "http://clip-image.ns.svc:8080/")
    monkeypatch.setenv("PREDICTOR_TIMEOUT_S", "2.5")
    monkeypatch.setenv("GATEWAY_API_KEYS", " k1, ,k2 ")
    monkeypatch.setenv("GATEWAY_MAX_TEXTS", "4")
    monkeypatch.setenv("GATEWAY_TEXT_BATCH_WAIT_MS", "12.5")
    s = Settings()
    assert s.image_predictor_url == "http://clip-image.ns.svc:8080"
    assert s.text_predictor_url == "http://localhost:8002"
    assert (s.image_model_name, s.text_model_name) == ("clip-image", "clip-text")
    assert s.predictor_timeout_s == 2.5
    assert s.gateway_api_keys == ("k1", "k2")
    assert s.gateway_max_texts == 4
    assert s.gateway_port == 8000
    assert (s.gateway_text_batch_wait_ms, s.gateway_text_batch_size) == (12.5, 32)
    assert (s.gateway_image_calls_in_flight, s.gateway_image_batch_size) == (2, 16)
    assert "k1" not in str(s.redacted())


@pytest.mark.usefixtures("starts_processes")
def test_a_bad_setting_stops_the_start_with_its_name() -> None:
    env = {"PATH": "/usr/bin:/bin", "TEXT_PREDICTOR_URL": "clip-text:8080", "GATEWAY_PORT": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 1
    assert "text_predictor_url" in out.stderr
    assert "http://" in out.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_TEXT_BATCH_WAIT_MS", "-1"),
        ("GATEWAY_TEXT_BATCH_SIZE", "0"),
        ("GATEWAY_IMAGE_CALLS_IN_FLIGHT", "-1"),
        ("GATEWAY_IMAGE_BATCH_SIZE", "0"),
        ("GATEWAY_IMAGE_BATCH_SIZE", "65"),  # the predictor's --max_items
    ],
)
def test_batching_bounds_are_checked(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.lower()):
        Settings()
