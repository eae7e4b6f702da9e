"""One predictor behind the gateway: a pooled HTTP client, one retry, and honest error mapping."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx

from gateway import cpu
from gateway.errors import PredictorError
from gateway.metrics import Metrics
from gateway.transport import AiohttpTransport, HttpxTransport, Reply, Transport
from gateway.v2wire import INFERENCE_HEADER, InferBody, InferResult, MalformedResponse, read_response

log = logging.getLogger("gateway")

# Jittered, so that many requests failing together do not retry together.
RETRY_BACKOFF_S = (0.1, 0.2)
# The request never reached the model: a refused or timed-out connect, or a pooled keep-alive
# connection the server had already closed (KServe drops it after a 500). Inference is idempotent.
CONNECTION_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
# Idle pooled connections are closed well before KServe's own keep-alive timeout (65 s).
KEEPALIVE_S = 30.0
# Weight of the newest call in `typical_s`, the moving average of successful calls' durations.
TYPICAL_WEIGHT = 0.2


def pool_size(max_concurrency: int) -> int:
    """Pooled connections to one predictor: one for each request the gateway admits at once
    (`GATEWAY_MAX_CONCURRENCY`), so none waits for a connection, and one for the readiness look,
    which that limit does not count."""
    return max_concurrency + 1


class PredictorClient:
    """Calls `POST {url}/v2/models/{model}/infer` and `GET .../ready` on one predictor, over a pool of
    `max_connections`.

    It also keeps statistics of its calls: `in_flight`, the calls under way, and `typical_s`, a moving
    average of a successful call's duration (the text path reads the image predictor's, through
    `imagesharing.SharedImageCalls`, to decide how long texts may wait for company).
    """

    def __init__(
        self,
        name: str,
        url: str,
        model: str,
        timeout_s: float,
        metrics: Metrics,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.model = model
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.typical_s = 0.0
        self.in_flight = 0
        self.transport: Transport = (
            HttpxTransport(transport)
            if transport is not None
            else AiohttpTransport(limit=max_connections, keepalive_s=KEEPALIVE_S)
        )
        self._infer_url = f"{url}/v2/models/{model}/infer"
        # The labelled series of this predictor, looked up once.
        self._duration = metrics.predictor_duration.labels(name)

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def infer(self, body: InferBody, rows: int, request_id: str) -> InferResult:
        """Send one infer request; return its embeddings or raise PredictorError."""
        start = time.perf_counter()
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._post(body, request_id)
            embeddings = await cpu.run(len(response.content), self._read, response, rows)
            self.typical_s += TYPICAL_WEIGHT * (time.perf_counter() - start - self.typical_s)
            return embeddings
        except PredictorError as exc:
            self.metrics.predictor_errors.labels(self.name, exc.reason).inc()
            raise
        except TimeoutError:
            self.metrics.predictor_errors.labels(self.name, "timeout").inc()
            raise self._timed_out() from None
        finally:
            self.in_flight -= 1
            self._duration.observe(time.perf_counter() - start)

    async def _post(self, body: InferBody, request_id: str) -> Reply:
        headers = {"x-request-id": request_id, **body.headers}
        for attempt in (1, 2):
            try:
                return await self.transport.request(
                    "POST", self._infer_url, self.timeout_s, body.content, headers
                )
            except CONNECTION_FAILURES as exc:
                if attempt == 2:
                    raise self._unreachable(exc) from exc
                await asyncio.sleep(random.uniform(*RETRY_BACKOFF_S))
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError as exc:
                raise PredictorError(
                    self.name,
                    "unreachable",
                    503,
                    f"the {self.name} predictor at {self.url} failed: {type(exc).__name__}",
                ) from exc
        raise AssertionError("unreachable")

    def _read(self, response: Reply, rows: int) -> InferResult:
        status = response.status
        if status == 200:
            length = response.headers.get(INFERENCE_HEADER)
            try:
                return read_response(response.content, int(length) if length else None, rows)
            except (MalformedResponse, ValueError) as exc:
                raise PredictorError(
                    self.name, "bad_response", 502, f"the {self.name} predictor sent a bad response: {exc}"
                ) from exc
        detail = _error_message(response)
        if status == 404:
            raise PredictorError(
                self.name,
                "not_found",
                502,
                f"the {self.name} predictor at {self.url} has no model {self.model!r} "
                f"(check {self.name.upper()}_MODEL_NAME): {detail}",
            )
        if status in (429, 503) and "retry-after" in response.headers:
            raise PredictorError(
                self.name,
                "overloaded",
                503,
                f"the {self.name} predictor is overloaded; retry shortly",
                headers={"Retry-After": _retry_after(response.headers["retry-after"])},
            )
        if status in (429, 503):
            raise PredictorError(
                self.name, "not_ready", 503, f"the {self.name} predictor is not ready: {detail}"
            )
        if 400 <= status < 500:
            raise PredictorError(
                self.name, "bad_request", 400, f"the {self.name} predictor rejected the input: {detail}"
            )
        # A predictor's 5xx text can name exception types, devices or paths: it goes to the log only.
        log.warning("the %s predictor answered %d: %s", self.name, status, detail)
        raise PredictorError(
            self.name, "server_error", 502, f"the {self.name} predictor failed with {status}"
        )

    async def config(self) -> dict[str, Any]:
        """The model's `GET /v2/models/{model}/config` answer (its `parameters` name the model), or
        PredictorError (counted in `predictor_errors_total` like an infer call's)."""
        try:
            return await self._config()
        except PredictorError as exc:
            self.metrics.predictor_errors.labels(self.name, exc.reason).inc()
            raise

    def _timed_out(self) -> PredictorError:
        return PredictorError(
            self.name, "timeout", 504, f"the {self.name} predictor did not answer within {self.timeout_s:g} s"
        )

    def _unreachable(self, exc: Exception) -> PredictorError:
        return PredictorError(
            self.name,
            "unreachable",
            503,
            f"the {self.name} predictor at {self.url} is unreachable ({type(exc).__name__})",
        )

    async def _config(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.transport.request(
                    "GET", f"{self.url}/v2/models/{self.model}/config", self.timeout_s
                )
        except (TimeoutError, httpx.TimeoutException):
            raise self._timed_out() from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        try:
            body = response.json() if response.status == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("parameters"), dict):
            raise PredictorError(
                self.name,
                "bad_response",
                502,
                f"the {self.name} predictor did not describe model {self.model!r} "
                f"(GET /v2/models/{self.model}/config answered {response.status})",
            )
        return body

    async def ready(self, timeout_s: float) -> str | None:
        """None when the model reports ready, else why not."""
        try:
            response = await self.transport.request(
                "GET", f"{self.url}/v2/models/{self.model}/ready", timeout_s
            )
        except httpx.HTTPError as exc:
            return f"unreachable at {self.url} ({type(exc).__name__})"
        if response.status == 200:
            return None
        return f"model {self.model!r} not ready ({response.status}: {_error_message(response)})"


def _retry_after(value: str) -> str:
    """The predictor's Retry-After in whole seconds (1 to 60), whatever it sent."""
    seconds = int(value) if value.strip().isdigit() else 1
    return str(min(max(seconds, 1), 60))


def _error_message(response: Reply) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:500]
    return response.text[:200].strip() or response.reason
