"""`python -m gateway`: serve the gateway with uvicorn, configured from the environment."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import Settings


def _drained(signum: int, frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM itself (stop accepting, finish in-flight requests) and then re-raises it
    # to the previous handler: this one, so that a graceful stop exits 0 instead of dying by signal.
    sys.exit(0)


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        raise SystemExit(f"gateway: invalid settings:\n{exc}") from None
    logging.basicConfig(
        level=settings.gateway_log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One start line of our own; uvicorn's lifecycle lines only at debug, its errors always.
    level = logging.getLevelName(settings.gateway_log_level.upper())
    logging.getLogger("uvicorn.error").setLevel(
        max(level, logging.WARNING) if level > logging.DEBUG else level
    )
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every predictor call at INFO
    logging.getLogger("gateway").info(
        "gateway listening on http://%s:%d with %s",
        settings.gateway_host,
        settings.gateway_port,
        settings.redacted(),
    )
    signal.signal(signal.SIGTERM, _drained)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=settings.gateway_access_log,
        server_header=False,
        # On SIGTERM, in-flight requests get as long as a predictor call may take.
        timeout_graceful_shutdown=int(settings.predictor_timeout_s) + 5,
    )


if __name__ == "__main__":
    main()
