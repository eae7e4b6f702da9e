"""Prometheus metrics of the predictors, on the default registry that KServe's `/metrics` serves."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# 1 ms to 10 s, roughly x2 apart: covers a tiny model's 1 ms pass and a big CPU batch.
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
