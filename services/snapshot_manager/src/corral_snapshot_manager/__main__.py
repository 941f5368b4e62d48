"""`python -m corral_snapshot_manager`: snapshot images, build logs, volume storage."""

from __future__ import annotations

from corral_web.serving import serve

from .bootstrap import build
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    serve(build(settings).app, service="corral-snapshot-manager", host=settings.host, port=settings.port,
          log_level=settings.log_level)


if __name__ == "__main__":
    main()
