"""A fresh predictor exports every labelled series the alerts and dashboard use, at 0, before any request."""

from __future__ import annotations

import httpx

from devtools.procs import Program
from predictors.metrics import ERROR_REASONS
from tests.support.metrics import sample


def test_series_exist_at_zero_from_start_and_count_up(text_server: Program) -> None:
    page = httpx.get(text_server.url + "/metrics").text
    for reason in ERROR_REASONS:
        assert sample(page, "clip_inference_errors_total", model_name="clip-text", reason=reason) == 0.0
    assert sample(page, "clip_rejected_requests_total", model_name="clip-text") == 0.0
    assert sample(page, "clip_queued_items", model_name="clip-text") == 0.0
    for histogram in ("clip_batch_size", "clip_queue_seconds", "clip_inference_seconds"):
        assert sample(page, f"{histogram}_count", model_name="clip-text") == 0.0

    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [" "]}]}
    assert httpx.post(text_server.url + "/v2/models/clip-text/infer", json=body).status_code == 400
    page = httpx.get(text_server.url + "/metrics").text
    assert sample(page, "clip_inference_errors_total", model_name="clip-text", reason="invalid_input") == 1.0
    assert sample(page, "clip_inference_errors_total", model_name="clip-text", reason="forward") == 0.0
