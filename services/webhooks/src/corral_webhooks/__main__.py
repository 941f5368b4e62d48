"""`python -m corral_webhooks`: signed webhook deliveries of the platform's events."""

from __future__ import annotations

from corral_web.serving import serve

from .bootstrap import build
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    serve(build(settings).app, service="corral-webhooks", host=settings.host, port=settings.port,
          log_level=settings.log_level)


if __name__ == "__main__":
    main()
