"""One encoder and one decoder per context. Decoding is typed: a wrong payload raises."""

from __future__ import annotations

import msgspec

from .envelope import CommandEnvelope, EventEnvelope
from .identity import IdentityEvent
from .runner import AssignmentsRequest, RunnerAssignments, RunnerCommand, RunnerFact, RunnerHeartbeat
from .sandbox import SandboxEvent
from .ssh import (
    Ack,
    SshEvent,
    SshLoginReply,
    SshLoginRequest,
    SshSessionCheck,
    SshSessionCheckReply,
    SshSessionReport,
    SshWakeReply,
    SshWakeRequest,
)

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

ssh_events = msgspec.json.Decoder(EventEnvelope[SshEvent])
ssh_login_request = msgspec.json.Decoder(SshLoginRequest)
ssh_login_reply = msgspec.json.Decoder(SshLoginReply)
ssh_wake_request = msgspec.json.Decoder(SshWakeRequest)
ssh_wake_reply = msgspec.json.Decoder(SshWakeReply)
ssh_session_report = msgspec.json.Decoder(SshSessionReport)
ssh_session_check = msgspec.json.Decoder(SshSessionCheck)
ssh_session_check_reply = msgspec.json.Decoder(SshSessionCheckReply)
ack = msgspec.json.Decoder(Ack)

RecordedEvent = SandboxEvent | IdentityEvent | SshEvent
"""Everything the api's event store records."""

recorded_events = msgspec.json.Decoder(EventEnvelope[RecordedEvent])
