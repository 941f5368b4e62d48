"""One encoder and one decoder per context. Decoding is typed: a wrong payload raises."""

from __future__ import annotations

import msgspec

from .audit import AuditEvent
from .envelope import CommandEnvelope, EventEnvelope
from .identity import IdentityEvent
from .runner import AssignmentsRequest, RunnerAssignments, RunnerCommand, RunnerFact, RunnerHeartbeat
from .sandbox import SandboxEvent

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

RecordedEvent = SandboxEvent | IdentityEvent | AuditEvent
"""Everything the api's event store records."""

recorded_events = msgspec.json.Decoder(EventEnvelope[RecordedEvent])
