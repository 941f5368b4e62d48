"""Stream names, subjects and key-value buckets. No other module spells a subject."""

from __future__ import annotations

import re

import msgspec

CMD_STREAM = "CMD"
EVT_STREAM = "EVT"
DLQ_STREAM = "DLQ"

CMD_SUBJECTS = "cmd.>"
EVT_SUBJECTS = "evt.>"
DLQ_SUBJECTS = "dlq.>"

ACTIVITY_BUCKET = "corral-activity"
"""KV bucket: sandbox id -> ISO time of its last outside activity (proxy traffic, SSH, a running command)."""

RUNNERS_BUCKET = "corral-runners"
"""KV bucket: runner id -> `RunnerHeartbeat`, with a TTL so silent runners disappear."""

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def event_subject(event: msgspec.Struct) -> str:
    """`evt.<aggregate>.<name>`, e.g. `SandboxStopRequested` -> `evt.sandbox.stop_requested`."""
    cls = type(event)
    aggregate: str = cls.__aggregate__  # type: ignore[attr-defined]
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    prefix = "".join(part.capitalize() for part in aggregate.split("_"))
    name = tag[len(prefix):] if tag.startswith(prefix) and tag != prefix else tag
    return f"evt.{aggregate}.{snake(name)}"


def events_of(aggregate: str) -> str:
    """Filter subject for every event of one aggregate type."""
    return f"evt.{aggregate}.>"


def runner_command_subject(runner_id: str, command: msgspec.Struct) -> str:
    """`cmd.runner.<runner_id>.<name>`, e.g. `cmd.runner.r1.create_sandbox`."""
    _check_token(runner_id)
    tag = type(command).__struct_config__.tag
    assert isinstance(tag, str)
    return f"cmd.runner.{runner_id}.{snake(tag)}"


def runner_commands(runner_id: str) -> str:
    """Filter subject of one runner's commands: a runner consumes only this."""
    _check_token(runner_id)
    return f"cmd.runner.{runner_id}.>"


def dead_letter_subject(stream: str, durable: str) -> str:
    _check_token(durable)
    return f"dlq.{stream.lower()}.{durable}"


RUNNER_ASSIGNMENTS = "rpc.api.runner_assignments"
"""Request/reply: `AssignmentsRequest` -> `RunnerAssignments`, the sandboxes the api placed on a runner."""


SSH_LOGIN = "rpc.api.ssh_login"
"""Request/reply: `SshLoginRequest` -> `SshLoginReply` (the ssh-gateway asks whether a token may log in)."""

SSH_WAKE = "rpc.api.ssh_wake"
"""Request/reply: `SshWakeRequest` -> `SshWakeReply` (start the sandbox of a granted SSH login)."""

SSH_SESSION_ENDED = "rpc.api.ssh_session_ended"
"""Request/reply: `SshSessionReport` -> `Ack`, once the event is recorded."""

SSH_SESSION_CHECK = "rpc.api.ssh_session_check"
"""Request/reply: `SshSessionCheck` -> `SshSessionCheckReply` (which open sessions lost their access)."""


_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_token(token: str) -> None:
    if not _TOKEN.match(token):
        raise ValueError(f"not a valid subject token: {token!r}")
