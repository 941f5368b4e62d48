"""One encoder and one decoder per context. Decoding is typed: a wrong payload raises."""

from __future__ import annotations

import msgspec

from .audit import AuditEvent
from .envelope import CommandEnvelope, EventEnvelope
from .identity import IdentityEvent
from .preview import PreviewWakeReply, PreviewWakeRequest, SignedPreviewUrlEvent
from .runner import AssignmentsRequest, RunnerAssignments, RunnerCommand, RunnerFact, RunnerHeartbeat
from .sandbox import SandboxEvent
from .snapshot import SnapshotEvent
from .snapshot_manager import BuildLogChunk, SnapshotManagerCommand, SnapshotManagerFact
from .ssh import (
    Ack, SshEvent, SshLoginReply, SshLoginRequest, SshSessionCheck, SshSessionCheckReply, SshSessionReport,
    SshWakeReply, SshWakeRequest,
)
from .volume import VolumeEvent
from .webhooks import (
    DeliveriesReply, DeliveriesRequest, DisableEndpointReply, DisableEndpointRequest, ReplayReply, ReplayRequest,
    SendTestReply, SendTestRequest, WebhookDeliveryEvent, WebhookEndpointEvent,
)

encoder = msgspec.json.Encoder()
"""Encodes any contract struct; one instance, as encoding needs no type."""

encode = encoder.encode

sandbox_events = msgspec.json.Decoder(EventEnvelope[SandboxEvent])
identity_events = msgspec.json.Decoder(EventEnvelope[IdentityEvent])
audit_events = msgspec.json.Decoder(EventEnvelope[AuditEvent])
runner_facts = msgspec.json.Decoder(EventEnvelope[RunnerFact])
runner_commands = msgspec.json.Decoder(CommandEnvelope[RunnerCommand])
runner_heartbeat = msgspec.json.Decoder(RunnerHeartbeat)
runner_assignments = msgspec.json.Decoder(RunnerAssignments)
assignments_request = msgspec.json.Decoder(AssignmentsRequest)

snapshot_events = msgspec.json.Decoder(EventEnvelope[SnapshotEvent])
volume_events = msgspec.json.Decoder(EventEnvelope[VolumeEvent])
snapshot_manager_commands = msgspec.json.Decoder(CommandEnvelope[SnapshotManagerCommand])
snapshot_manager_facts = msgspec.json.Decoder(EventEnvelope[SnapshotManagerFact])
build_log_chunk = msgspec.json.Decoder(BuildLogChunk)

preview_wake_request = msgspec.json.Decoder(PreviewWakeRequest)
preview_wake_reply = msgspec.json.Decoder(PreviewWakeReply)

ssh_events = msgspec.json.Decoder(EventEnvelope[SshEvent])
ssh_login_request = msgspec.json.Decoder(SshLoginRequest)
ssh_login_reply = msgspec.json.Decoder(SshLoginReply)
ssh_wake_request = msgspec.json.Decoder(SshWakeRequest)
ssh_wake_reply = msgspec.json.Decoder(SshWakeReply)
ssh_session_report = msgspec.json.Decoder(SshSessionReport)
ssh_session_check = msgspec.json.Decoder(SshSessionCheck)
ssh_session_check_reply = msgspec.json.Decoder(SshSessionCheckReply)
ack = msgspec.json.Decoder(Ack)

RecordedEvent = (SandboxEvent | IdentityEvent | SnapshotEvent | VolumeEvent | WebhookEndpointEvent
                 | SignedPreviewUrlEvent | SshEvent | AuditEvent)
"""Everything the api's event store records."""

recorded_events = msgspec.json.Decoder(EventEnvelope[RecordedEvent])

WebhooksRecordedEvent = WebhookDeliveryEvent | WebhookEndpointEvent | SandboxEvent | SnapshotEvent | VolumeEvent
"""Everything the webhooks service's store records: its deliveries, and its copies of the platform events
it follows (endpoints, and the lifecycle of what webhooks report on, with secrets and bulky fields left out)."""

webhook_deliveries_request = msgspec.json.Decoder(DeliveriesRequest)
webhook_deliveries_reply = msgspec.json.Decoder(DeliveriesReply)
webhook_replay_request = msgspec.json.Decoder(ReplayRequest)
webhook_replay_reply = msgspec.json.Decoder(ReplayReply)
webhook_send_test_request = msgspec.json.Decoder(SendTestRequest)
webhook_send_test_reply = msgspec.json.Decoder(SendTestReply)
disable_endpoint_request = msgspec.json.Decoder(DisableEndpointRequest)
disable_endpoint_reply = msgspec.json.Decoder(DisableEndpointReply)
