"""Agent ops of one toolbox area (see handlers.py). Each handler: (message, context, connection)."""
from __future__ import annotations

HANDLERS: dict = {}
