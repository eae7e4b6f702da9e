"""Prometheus metrics of the predictors, on the default registry that KServe's `/metrics` serves.

`expose_at_zero(model_name)` creates every labelled series at start, each error reason included, so
dashboards and alerts read 0 instead of "no data" before the first error or request.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# 1 ms to 10 s, roughly x2 apart: from a tiny model's pass to a big model's CPU batch.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

BATCH_SIZE = Histogram(
    "clip_batch_size", "Items encoded in one forward pass", ["model_name"], buckets=BATCH_BUCKETS
)
QUEUE_SECONDS = Histogram(
    "clip_queue_seconds", "Time an item waited for its batch", ["model_name"], buckets=SECONDS_BUCKETS
)
INFERENCE_SECONDS = Histogram(
    "clip_inference_seconds", "Duration of one forward pass", ["model_name"], buckets=SECONDS_BUCKETS
)
# The reasons `clip_inference_errors_total` counts: a request refused as bad input (400), a forward
# pass that raised (its items' requests fail).
INVALID_INPUT = "invalid_input"
FORWARD = "forward"
ERROR_REASONS = (INVALID_INPUT, FORWARD)

INFERENCE_ERRORS = Counter(
    "clip_inference_errors_total",
    "Requests or forward passes that failed, by reason",
    ["model_name", "reason"],
)
REJECTED_REQUESTS = Counter(
    "clip_rejected_requests_total",
    "Requests refused with 503 because the predictor held --max_queue_items items",
    ["model_name"],
)
QUEUED_ITEMS = Gauge(
    "clip_queued_items",
    "Items admitted and not yet answered (decoding, waiting for a batch or in a forward pass)",
    ["model_name"],
)


def expose_at_zero(model_name: str) -> None:
    """Create `model_name`'s series of every predictor metric, counters at 0 for each known reason."""
    for reason in ERROR_REASONS:
        INFERENCE_ERRORS.labels(model_name, reason)
    REJECTED_REQUESTS.labels(model_name)
    QUEUED_ITEMS.labels(model_name).set(0)
    for histogram in (BATCH_SIZE, QUEUE_SECONDS, INFERENCE_SECONDS):
        histogram.labels(model_name)
