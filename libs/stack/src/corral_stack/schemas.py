"""`proto-schemas/`: JSON Schema of every contract message and the REST OpenAPI document, generated
from the code and committed; `check()` reports drift (a test fails on it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from corral_contracts import webhooks
from corral_contracts.codecs import RecordedEvent, WebhooksRecordedEvent
from corral_contracts.envelope import CommandEnvelope, EventEnvelope
from corral_contracts.preview import PreviewWakeReply, PreviewWakeRequest
from corral_contracts.runner import (
    AssignmentsRequest, RunnerAssignments, RunnerCommand, RunnerFact, RunnerHeartbeat,
)
from corral_contracts import ssh
from corral_contracts.snapshot_manager import BuildLogChunk, SnapshotManagerCommand, SnapshotManagerFact


def contract_schemas() -> dict[str, Any]:
    roots = {
        "RecordedEventEnvelope": EventEnvelope[RecordedEvent],
        "RunnerFactEnvelope": EventEnvelope[RunnerFact],
        "RunnerCommandEnvelope": CommandEnvelope[RunnerCommand],
        "RunnerHeartbeat": RunnerHeartbeat,
        "AssignmentsRequest": AssignmentsRequest,
        "RunnerAssignments": RunnerAssignments,
        "WebhooksStoreEvent": WebhooksRecordedEvent,
        "WebhookDeliveriesRequest": webhooks.DeliveriesRequest,
        "WebhookDeliveriesReply": webhooks.DeliveriesReply,
        "WebhookReplayRequest": webhooks.ReplayRequest,
        "WebhookReplayReply": webhooks.ReplayReply,
        "WebhookSendTestRequest": webhooks.SendTestRequest,
        "WebhookSendTestReply": webhooks.SendTestReply,
        "DisableWebhookEndpointRequest": webhooks.DisableEndpointRequest,
        "DisableWebhookEndpointReply": webhooks.DisableEndpointReply,
        "PreviewWakeRequest": PreviewWakeRequest,
        "PreviewWakeReply": PreviewWakeReply,
        **{name: getattr(ssh, name) for name in (
            "SshLoginRequest", "SshLoginReply", "SshWakeRequest", "SshWakeReply", "SshSessionReport",
            "SshSessionCheck", "SshSessionCheckReply", "Ack")},
        "SnapshotManagerCommandEnvelope": CommandEnvelope[SnapshotManagerCommand],
        "SnapshotManagerFactEnvelope": EventEnvelope[SnapshotManagerFact],
        "BuildLogChunk": BuildLogChunk,
    }
    schemas, components = msgspec.json.schema_components(list(roots.values()), ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Corral messages (CMD, EVT and LOGS streams, runner KV, request/reply)",
        "oneOf": schemas,
        "$defs": components,
        "x-roots": dict(zip(roots, schemas)),
    }


def openapi() -> dict[str, Any]:
    from corral_api.entrypoints.http import ROUTES
    from corral_api.entrypoints.openapi import openapi_document

    return openapi_document(ROUTES)


def documents() -> dict[str, str]:
    return {
        "contracts.schema.json": json.dumps(contract_schemas(), indent=2, sort_keys=True) + "\n",
        "openapi.json": json.dumps(openapi(), indent=2, sort_keys=True) + "\n",
    }


def write(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        (target / name).write_text(text)
        written.append(target / name)
    return written


def drift(target: Path) -> list[str]:
    """Names of committed documents that differ from what the code generates."""
    stale = []
    for name, text in documents().items():
        path = target / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale
