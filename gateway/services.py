"""What the endpoints share for the app's lifetime: settings, limits, predictor clients, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.requests import Request

from gateway.inputs import Limits
from gateway.metrics import Metrics
from gateway.predictor import PredictorClient
from gateway.readiness import Readiness
from gateway.settings import Settings
from gateway.textbatch import TextBatcher
from gateway.textcache import CachedTextEncoder, TextCache


@dataclass
class Services:
    settings: Settings
    limits: Limits
    metrics: Metrics
    image: PredictorClient
    text: PredictorClient
    readiness: Readiness
    texts: CachedTextEncoder

    @classmethod
    def start(
        cls, settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None
    ) -> Services:
        """Build the shared clients; `transport` replaces the network (tests)."""
        timeout = settings.predictor_timeout_s
        image = PredictorClient(
            "image", settings.image_predictor_url, settings.image_model_name, timeout, metrics, transport
        )
        text = PredictorClient(
            "text", settings.text_predictor_url, settings.text_model_name, timeout, metrics, transport
        )
        readiness = Readiness(
            [image, text], settings.gateway_readiness_cache_s, settings.gateway_readiness_timeout_s
        )
        batcher = TextBatcher(
            text, image, settings.gateway_text_batch_size, settings.gateway_text_batch_wait_ms / 1000
        )
        texts = CachedTextEncoder(batcher, TextCache(settings.gateway_text_cache_size, metrics))
        return cls(settings, Limits.from_settings(settings), metrics, image, text, readiness, texts)

    async def aclose(self) -> None:
        await self.image.aclose()
        await self.text.aclose()

    @staticmethod
    def of(request: Request) -> Services:
        services: Services = request.app.state.services
        return services
