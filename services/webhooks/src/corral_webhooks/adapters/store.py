"""The webhooks service's store: an `eventsourcing` event log of its own (SQLite under
`$CORRAL_HOME/webhooks/` by default, PostgreSQL when configured, in tables of its own)."""

from __future__ import annotations

from pathlib import Path

from corral_contracts.codecs import WebhooksRecordedEvent
from corral_eventstore import EventLog


class WebhookStore(EventLog):
    name = "corral_webhooks"
    """Also the PostgreSQL table prefix (`corral_webhooks_events`), apart from the api's."""

    def __init__(self, database_url: str):
        if database_url.startswith("sqlite:///"):
            Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(WebhooksRecordedEvent, database_url)
