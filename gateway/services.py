"""What the endpoints share for the app's lifetime: settings, limits, predictor clients, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.requests import Request

from gateway.imagefetch import ImageFetcher
from gateway.imagesharing import SharedImageCalls
from gateway.inputs import Limits
from gateway.metrics import Metrics
from gateway.modelinfo import ModelInfo
from gateway.predictor import PredictorClient, pool_size
from gateway.readiness import Readiness
from gateway.settings import Settings
from gateway.textencoder import TextEncoder
from gateway.urlguard import AddressPolicy, CheckedBackend


@dataclass
class Services:
    """The image path (`images`, which owns the image predictor's client); the text path
    (`text_encoder`, which owns the text predictor's client); the readiness look at both; the request
    limits and the metrics."""

    settings: Settings
    images: SharedImageCalls
    limits: Limits
    metrics: Metrics
    text_encoder: TextEncoder
    readiness: Readiness
    model_info: ModelInfo
    # Fetches image URLs in JSON bodies; None while GATEWAY_IMAGE_URLS is off.
    fetch_images: ImageFetcher | None = None

    @classmethod
    def start(
        cls,
        settings: Settings,
        metrics: Metrics,
        transport: httpx.AsyncBaseTransport | None = None,
        image_fetcher: ImageFetcher | None = None,
    ) -> Services:
        """Build the shared clients; `transport` replaces the network to the predictors and
        `image_fetcher` the one to image URLs (tests)."""
        pool = pool_size(settings.gateway_max_concurrency)

        def client(name: str, url: str, model: str) -> PredictorClient:
            return PredictorClient(name, url, model, settings.predictor_timeout_s, metrics, pool, transport)

        image = client("image", settings.image_predictor_url, settings.image_model_name)
        text = client("text", settings.text_predictor_url, settings.text_model_name)
        readiness = Readiness(
            [image, text], settings.gateway_readiness_cache_s, settings.gateway_readiness_timeout_s
        )
        images = SharedImageCalls(
            image, settings.gateway_image_calls_in_flight, settings.gateway_image_batch_size
        )
        texts = TextEncoder(
            text,
            images,
            metrics,
            cache_size=settings.gateway_text_cache_size,
            call_size=settings.gateway_text_batch_size,
            max_wait_s=settings.gateway_text_batch_wait_ms / 1000,
        )
        limits = Limits.from_settings(settings)
        fetcher = None
        if settings.gateway_image_urls:
            fetcher = image_fetcher or ImageFetcher(
                CheckedBackend(AddressPolicy(settings.gateway_image_url_allow)),
                max_bytes=settings.gateway_max_image_bytes,
                max_pixels=settings.gateway_max_image_pixels,
                connect_timeout_s=settings.gateway_image_url_connect_timeout_s,
                total_timeout_s=settings.gateway_image_url_timeout_s,
            )
        return cls(settings, images, limits, metrics, texts, readiness, ModelInfo(text), fetcher)

    async def aclose(self) -> None:
        await self.images.client.aclose()
        await self.text_encoder.client.aclose()
        if self.fetch_images is not None:
            await self.fetch_images.aclose()

    @staticmethod
    def of(request: Request) -> Services:
        services: Services = request.app.state.services
        return services
