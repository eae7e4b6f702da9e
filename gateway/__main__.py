"""`python -m gateway`: serve the gateway with uvicorn, configured from the environment."""

from __future__ import annotations

import logging

import uvicorn
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import Settings


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        raise SystemExit(f"gateway: invalid settings:\n{exc}") from None
    logging.basicConfig(
        level=settings.gateway_log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("gateway").info("starting gateway with %s", settings.redacted())
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.gateway_log_level,
        access_log=settings.gateway_access_log,
        server_header=False,
    )


if __name__ == "__main__":
    main()
