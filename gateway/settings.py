"""Gateway settings, read once from the environment at start."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the gateway can be told, by environment variable (docs/configuration.md lists them).

    Defaults run the three programs side by side on one machine (`make run`).
    """

    model_config = SettingsConfigDict(case_sensitive=False, frozen=True, extra="ignore")

    # Each description is what docs/configuration.md says of the variable (`make docs` copies it there).
    image_predictor_url: str = Field(
        default="http://localhost:8001", description="base URL of the clip-image predictor (http or https)"
    )
    text_predictor_url: str = Field(
        default="http://localhost:8002", description="base URL of the clip-text predictor (http or https)"
    )
    image_model_name: str = Field(default="clip-image", description="the image model's name on the v2 wire")
    text_model_name: str = Field(default="clip-text", description="the text model's name on the v2 wire")
    predictor_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="bound on one predictor call, retry included: past it the request fails with 504. "
        "On SIGTERM, in-flight requests get this plus 5 s to finish",
    )
    gateway_readiness_cache_s: float = Field(
        default=2.0,
        ge=0,
        description="how long /readyz reuses its last look at the predictors (probes must not flood them)",
    )
    gateway_readiness_timeout_s: float = Field(
        default=1.0, gt=0, description="timeout of each look /readyz takes at a predictor"
    )
    gateway_max_concurrency: int = Field(
        default=64,
        gt=0,
        description="requests in flight on the predictor endpoints per process; past it 503 + Retry-After "
        "at once. Each predictor's connection pool is this + 1 (the readiness look), so no admitted request "
        "waits for a connection",
    )

    # Request limits, checked before any predictor is called.
    gateway_max_image_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="largest image file in bytes (413 above)"
    )
    gateway_max_image_pixels: int = Field(
        default=40_000_000, gt=0, description="largest width x height, read from the image header (413 above)"
    )
    gateway_max_texts: int = Field(default=32, gt=0, description="most texts in one request (400 above)")
    gateway_max_text_chars: int = Field(
        default=2000, gt=0, description="longest text in characters (400 above)"
    )
    gateway_max_images: int = Field(
        default=8,
        gt=0,
        le=64,
        description="most images in one request (413 above); all go to the image predictor in one call, so "
        "at most its --max_items. The body cap grows with it",
    )

    gateway_text_cache_size: int = Field(
        default=4096,
        ge=0,
        description="text embeddings kept by the gateway (LRU, keyed by the exact text and the model's "
        "identity; about 4 KB each at 512 dimensions); 0 turns the cache off",
    )
    gateway_text_batch_size: int = Field(
        default=32,
        gt=0,
        description="most texts in one text predictor call shared by concurrent /compare/ requests",
    )
    gateway_text_batch_wait_ms: float = Field(
        default=250.0,
        ge=0,
        description="how long the texts of a /compare/ request may wait to share a text predictor call "
        "with other requests' texts, and only while their images are still encoding; 0 sends each "
        "request's texts alone and at once",
    )

    gateway_image_calls_in_flight: int = Field(
        default=2,
        ge=0,
        description="most image predictor calls under way at once: while that many are, the images of new "
        "requests wait and go together in one call when one returns. With several image predictor pods, "
        "at least 2 per pod; 0 sends each request's images at once, alone (for predictors that autoscale "
        "on requests in flight)",
    )
    gateway_image_batch_size: int = Field(
        default=16,
        gt=0,
        le=64,
        description="most images in one image predictor call shared by waiting requests (a request's own "
        "images always go together); at most the image predictor's --max_items",
    )

    gateway_image_urls: bool = Field(
        default=False,
        description="accept http(s) image URLs in JSON bodies and fetch them (off: only uploads, base64 and "
        "data: URIs). Addresses that are not public are refused unless in GATEWAY_IMAGE_URL_ALLOW",
    )
    gateway_image_url_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        default=(),
        description="comma-separated networks (CIDR) whose addresses image URLs may reach although they "
        "are not public (e.g. an internal image store)",
    )
    gateway_image_url_connect_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="connect timeout of one image URL fetch"
    )
    gateway_image_url_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="bound on one image URL fetch, redirects included (504 above)"
    )

    gateway_api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated bearer keys, compared in constant time; empty means no authentication "
        "(/healthz, /readyz and /metrics stay open)",
    )

    gateway_host: str = Field(default="0.0.0.0", description="address the gateway listens on")
    gateway_port: int = Field(default=8000, ge=0, le=65535, description="port the gateway listens on")
    gateway_log_level: str = Field(
        default="info", description="critical, error, warning, info or debug (debug adds uvicorn's lifecycle)"
    )
    gateway_access_log: bool = Field(default=False, description="one log line per request when true")

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
