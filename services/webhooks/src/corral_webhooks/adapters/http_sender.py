"""Sending one attempt over HTTP, safely: the destination's addresses are checked when the connection is
made (the connection goes to the very address checked: no second lookup an attacker could change), no
redirect is followed, the whole attempt is bounded in time and only a small excerpt of the response is read.
"""

from __future__ import annotations

import asyncio
import socket
import time
import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from corral_web.outbound import DestinationRefused, address_refusal, check_addresses, literal_address, split_url

from ..app.ports import AttemptResult

EXCERPT = 1024
"""Bytes of a response body kept (and read at most)."""
USER_AGENT = "Corral-Webhooks/0.1"


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then refuses a host any of whose addresses is refused."""

    def __init__(self, *, allow_private: bool):
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        check_addresses(host, [r["host"] for r in results], allow_private=self._allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()


class HttpSender:
    def __init__(self, *, allow_private: bool, timeout: float = 15.0, connections: int = 100):
        self._allow_private = allow_private
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private=self._allow_private),
                                         use_dns_cache=False, limit=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                              timeout=aiohttp.ClientTimeout(total=self._timeout),
                                              headers={"User-Agent": USER_AGENT}, auto_decompress=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        assert self._session is not None, "start() first"
        started = time.perf_counter()

        def failed(error: str, status: int | None = None, response: str = "") -> AttemptResult:
            return AttemptResult(succeeded=False, status_code=status, latency_ms=_ms(started), response=response,
                                 error=error)

        try:
            _, host, _ = split_url(url)
            literal = literal_address(host)
            if literal is not None:
                reason = address_refusal(literal, allow_private=self._allow_private)
                if reason:
                    return failed(f"refused: {reason}")
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                excerpt = await _excerpt(response)
                latency = _ms(started)
                status = response.status
                location = response.headers.get("Location", "?")
        except DestinationRefused as error:
            return failed(f"refused: {error}")
        except ValueError as error:
            return failed(f"invalid URL: {error}")
        except asyncio.TimeoutError:
            return failed(f"no answer within {self._timeout:g}s")
        except aiohttp.ClientConnectorError as error:
            return failed(f"connection failed: {error.os_error.strerror or error.os_error}")
        except aiohttp.ClientError as error:
            return failed(f"{type(error).__name__}: {error}")
        except OSError as error:
            return failed(f"connection failed: {error.strerror or error}")
        if 200 <= status < 300:
            return AttemptResult(succeeded=True, status_code=status, latency_ms=latency, response=excerpt)
        error = f"redirect to {location} not followed" if 300 <= status < 400 else ""
        return AttemptResult(succeeded=False, status_code=status, latency_ms=latency, response=excerpt, error=error)


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    data = b""
    while len(data) < EXCERPT:
        chunk = await response.content.read(EXCERPT - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = ["GuardedResolver", "HttpSender"]
