"""One encoder and one decoder per context. Decoding is typed: a wrong payload raises."""

from __future__ import annotations

import msgspec

from .envelope import CommandEnvelope, EventEnvelope
from .identity import IdentityEvent
from .preview import PreviewWakeReply, PreviewWakeRequest, SignedPreviewUrlEvent
from .runner import AssignmentsRequest, RunnerAssignments, RunnerCommand, RunnerFact, RunnerHeartbeat
from .sandbox import SandboxEvent

encoder = msgspec.json.Encoder()
"""Encodes any contract struct; one instance, as encoding needs no type."""

encode = encoder.encode

sandbox_events = msgspec.json.Decoder(EventEnvelope[SandboxEvent])
identity_events = msgspec.json.Decoder(EventEnvelope[IdentityEvent])
runner_facts = msgspec.json.Decoder(EventEnvelope[RunnerFact])
runner_commands = msgspec.json.Decoder(CommandEnvelope[RunnerCommand])
runner_heartbeat = msgspec.json.Decoder(RunnerHeartbeat)
runner_assignments = msgspec.json.Decoder(RunnerAssignments)
assignments_request = msgspec.json.Decoder(AssignmentsRequest)

preview_wake_request = msgspec.json.Decoder(PreviewWakeRequest)
preview_wake_reply = msgspec.json.Decoder(PreviewWakeReply)

RecordedEvent = SandboxEvent | IdentityEvent | SignedPreviewUrlEvent
"""Everything the api's event store records."""

recorded_events = msgspec.json.Decoder(EventEnvelope[RecordedEvent])
