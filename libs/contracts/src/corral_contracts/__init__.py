"""Corral's messages: the only place commands, events, subjects and streams are defined."""

from . import (
    audit, codecs, guard, identity, preview, runner, sandbox, snapshot, snapshot_manager, ssh, subjects, volume,
    webhooks,
)
from .envelope import CommandEnvelope, EventEnvelope

__all__ = ["CommandEnvelope", "EventEnvelope", "audit", "codecs", "guard", "identity", "preview", "runner",
           "sandbox", "snapshot", "snapshot_manager", "ssh", "subjects", "volume", "webhooks"]
