"""`python -m corral_ssh_gateway`: the ssh-gateway process (until SIGINT or SIGTERM; SIGUSR1 dumps its stacks)."""

from __future__ import annotations

import asyncio
import logging
import signal

from corral_observability import configure, stack_dumps
from corral_web import asyncio_compat

from .bootstrap import build
from .settings import Settings


async def run(settings: Settings) -> None:
    gateway = build(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    stack_dumps.install(loop)
    await gateway.start()
    try:
        await stopping.wait()
    finally:
        await gateway.stop()


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    configure("corral-ssh-gateway")
    asyncio_compat.install()
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
