"""Gateway settings, read once from the environment at start."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the gateway can be told, by environment variable (names are in DESIGN.md).

    Defaults run the three programs side by side on one machine (`make run`).
    """

    model_config = SettingsConfigDict(case_sensitive=False, frozen=True, extra="ignore")

    # Where the predictors are and what their models are called.
    image_predictor_url: str = "http://localhost:8001"
    text_predictor_url: str = "http://localhost:8002"
    image_model_name: str = "clip-image"
    text_model_name: str = "clip-text"
    # Upper bound on one predictor call, retry included; past it the request fails with 504.
    predictor_timeout_s: float = Field(default=10.0, gt=0)
    # How long /readyz trusts its last look at the predictors (probes must not flood them).
    gateway_readiness_cache_s: float = Field(default=2.0, ge=0)
    gateway_readiness_timeout_s: float = Field(default=1.0, gt=0)
    # Requests in flight on the predictor endpoints; past it 503 + Retry-After at once. The pool of
    # connections to each predictor is sized from it (`predictor.pool_size`), so no request waits for one.
    gateway_max_concurrency: int = Field(default=64, gt=0)

    # Request limits, checked before any predictor is called.
    gateway_max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    gateway_max_image_pixels: int = Field(default=40_000_000, gt=0)
    gateway_max_texts: int = Field(default=32, gt=0)
    gateway_max_text_chars: int = Field(default=2000, gt=0)
    # Images in one request (all go to the image predictor in one call, so at most its --max_items);
    # the body cap grows with it.
    gateway_max_images: int = Field(default=8, gt=0, le=64)

    # Text embeddings kept by the gateway (LRU, ~4 KB each at 512 dimensions); 0 turns the cache off.
    gateway_text_cache_size: int = Field(default=4096, ge=0)
    # Texts of concurrent /compare/ requests share one text predictor call of at most this many texts,
    # waiting at most this long for company, and only while their images are still encoding (see
    # gateway/textsharing.py); a wait of 0 sends each request's texts alone and at once.
    gateway_text_batch_size: int = Field(default=32, gt=0)
    gateway_text_batch_wait_ms: float = Field(default=250.0, ge=0)

    # Image URLs in JSON bodies, fetched by the gateway (off: only uploads, base64 and data: URIs).
    # Addresses that are not public are refused unless in one of these comma-separated networks (CIDR).
    gateway_image_urls: bool = False
    gateway_image_url_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    gateway_image_url_connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    gateway_image_url_timeout_s: float = Field(default=10.0, gt=0, le=120)

    # Comma-separated bearer keys; empty means no authentication.
    gateway_api_keys: Annotated[tuple[str, ...], NoDecode] = ()

    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(default=8000, ge=0, le=65535)
    gateway_log_level: str = "info"
    gateway_access_log: bool = False

    @field_validator("gateway_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("gateway_image_url_allow", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(ip_network(n.strip(), strict=False) for n in value.split(",") if n.strip())
            except ValueError as exc:
                raise ValueError(
                    f"GATEWAY_IMAGE_URL_ALLOW must be comma-separated CIDR networks: {exc}"
                ) from None
        return value

    @field_validator("image_predictor_url", "text_predictor_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"predictor URL must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("gateway_log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    def redacted(self) -> dict[str, object]:
        """The settings for a log line, with API keys replaced by their count."""
        values = self.model_dump()
        values["gateway_api_keys"] = f"<{len(self.gateway_api_keys)} keys>"
        values["gateway_image_url_allow"] = ",".join(map(str, self.gateway_image_url_allow))
        return values
