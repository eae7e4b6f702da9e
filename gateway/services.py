"""What the endpoints share for the app's lifetime: settings, limits, predictor clients, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.requests import Request

from gateway.inputs import FetchImages, Limits
from gateway.metrics import Metrics
from gateway.modelinfo import ModelInfo
from gateway.predictor import PredictorClient, pool_size
from gateway.readiness import Readiness
from gateway.settings import Settings
from gateway.textencoder import TextEncoder


@dataclass
class Services:
    """The image predictor's client; the text path (`text_encoder`, which owns the text predictor's
    client); the readiness look at both; the request limits and the metrics."""

    settings: Settings
    limits: Limits
    metrics: Metrics
    image_predictor: PredictorClient
    text_encoder: TextEncoder
    readiness: Readiness
    model_info: ModelInfo
    # Fetches image URLs in JSON bodies; None while GATEWAY_IMAGE_URLS is off.
    fetch_images: FetchImages | None = None

    @classmethod
    def start(
        cls, settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None
    ) -> Services:
        """Build the shared clients; `transport` replaces the network (tests)."""
        pool = pool_size(settings.gateway_max_concurrency)

        def client(name: str, url: str, model: str) -> PredictorClient:
            return PredictorClient(name, url, model, settings.predictor_timeout_s, metrics, pool, transport)

        image = client("image", settings.image_predictor_url, settings.image_model_name)
        text = client("text", settings.text_predictor_url, settings.text_model_name)
        readiness = Readiness(
            [image, text], settings.gateway_readiness_cache_s, settings.gateway_readiness_timeout_s
        )
        texts = TextEncoder(
            text,
            image,
            metrics,
            cache_size=settings.gateway_text_cache_size,
            call_size=settings.gateway_text_batch_size,
            max_wait_s=settings.gateway_text_batch_wait_ms / 1000,
        )
        return cls(
            settings, Limits.from_settings(settings), metrics, image, texts, readiness, ModelInfo(text)
        )

    async def aclose(self) -> None:
        await self.image_predictor.aclose()
        await self.text_encoder.client.aclose()

    @staticmethod
    def of(request: Request) -> Services:
        services: Services = request.app.state.services
        return services
