"""Corral's messages: the only place commands, events, subjects and streams are defined."""

from . import codecs, identity, runner, sandbox, ssh, subjects
from .envelope import CommandEnvelope, EventEnvelope

__all__ = ["CommandEnvelope", "EventEnvelope", "codecs", "identity", "runner", "sandbox", "ssh", "subjects"]
