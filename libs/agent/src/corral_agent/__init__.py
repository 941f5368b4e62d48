"""Corral's in-sandbox agent: exec over a small framed-JSON protocol on a unix socket.

The agent itself (everything `python3 -m corral_agent` imports) uses the standard library of
Python >= 3.9 only and stays small, because one runs in every sandbox. Two modules are host-side
and are never imported by the agent: `client` (asyncio client for the runner) and `bundle`
(builds the read-only zipapp shipped into sandboxes). They are re-exported lazily so that
importing this package costs nothing.
"""
from __future__ import annotations

_LAZY_EXPORTS = {
    "call": "client",
    "ping": "client",
    "AgentUnavailable": "client",
    "ProtocolViolation": "client",
    "build_zipapp": "bundle",
    "agent_version": "bundle",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> object:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError("module 'corral_agent' has no attribute %r" % (name,))
    import importlib

    return getattr(importlib.import_module("." + module_name, __name__), name)
