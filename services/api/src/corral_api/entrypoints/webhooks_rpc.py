"""What the api answers the webhooks service over NATS request/reply."""

from __future__ import annotations

from corral_contracts import codecs

from ..app.webhook_endpoints import WebhookService

ACTOR = {"Corral-Actor": "webhooks"}


class DisableDesk:
    """`DisableEndpointRequest` -> the endpoint disabled (recorded), unless it changed since it was judged."""

    def __init__(self, service: WebhookService):
        self._service = service

    async def handle(self, data: bytes) -> bytes:
        request = codecs.disable_endpoint_request.decode(data)
        return codecs.encode(await self._service.disable(request, dict(ACTOR)))
