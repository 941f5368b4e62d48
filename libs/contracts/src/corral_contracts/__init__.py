"""Corral's messages: the only place commands, events, subjects and streams are defined."""

from . import audit, codecs, identity, runner, sandbox, subjects
from .envelope import CommandEnvelope, EventEnvelope

__all__ = ["CommandEnvelope", "EventEnvelope", "audit", "codecs", "identity", "runner", "sandbox", "subjects"]
