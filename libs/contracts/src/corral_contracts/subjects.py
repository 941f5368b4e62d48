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
LOGS_STREAM = "LOGS"
LOGS_SUBJECTS = "logs.>"
"""Build logs, kept a day: written while a build runs, whether or not anyone watches."""

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


def snapshot_manager_command_subject(command: msgspec.Struct) -> str:
    """`cmd.snapshot_manager.<builds|volumes>.<name>`, e.g. `cmd.snapshot_manager.builds.build_snapshot`."""
    cls = type(command)
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return f"cmd.snapshot_manager.{cls.__target__}.{snake(tag)}"  # type: ignore[attr-defined]


def snapshot_manager_commands(target: str) -> str:
    """Filter subject of one kind of the snapshot manager's work (`builds` or `volumes`)."""
    _check_token(target)
    return f"cmd.snapshot_manager.{target}.>"


def build_log_subject(snapshot_id: str) -> str:
    _check_token(snapshot_id)
    return f"logs.snapshot.{snapshot_id}"


def dead_letter_subject(stream: str, durable: str) -> str:
    _check_token(durable)
    return f"dlq.{stream.lower()}.{durable}"


RUNNER_ASSIGNMENTS = "rpc.api.runner_assignments"
"""Request/reply: `AssignmentsRequest` -> `RunnerAssignments`, the sandboxes the api placed on a runner."""

DISABLE_WEBHOOK_ENDPOINT = "rpc.api.disable_webhook_endpoint"
"""Request/reply: `DisableEndpointRequest` -> `DisableEndpointReply` (webhooks service -> api)."""

WEBHOOK_DELIVERIES = "rpc.webhooks.deliveries"
"""Request/reply: `DeliveriesRequest` -> `DeliveriesReply`, an endpoint's delivery log (api -> webhooks)."""

WEBHOOK_REPLAY = "rpc.webhooks.replay"
"""Request/reply: `ReplayRequest` -> `ReplayReply` (api -> webhooks)."""

WEBHOOK_SEND_TEST = "rpc.webhooks.send_test"
"""Request/reply: `SendTestRequest` -> `SendTestReply` (api -> webhooks)."""

PREVIEW_WAKE = "rpc.api.preview_wake"
"""Request/reply: `PreviewWakeRequest` -> `PreviewWakeReply`, the proxy waking a stopped sandbox whose preview
was visited."""


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
