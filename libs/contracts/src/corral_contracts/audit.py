"""The audit trail: one event per mutating REST call (its own aggregate, written once, when the call
ends), recorded in the api's event log. Secrets never reach it: request metadata is masked first."""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec


class AuditRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "audit"
    audit_id: str
    organization_id: str
    """"" when the caller could not be identified (a refused key)."""
    actor_id: str = ""
    """The key id of the caller."""
    actor_name: str = ""
    """The key's name."""
    actor_key_prefix: str = ""
    actor_key_suffix: str = ""
    action: str
    """Daytona's action vocabulary: `create`, `delete`, `start`, `stop`, `replace_labels`, ..."""
    target_type: str
    """`sandbox`, `api_key`, `organization`, ..."""
    target_id: str = ""
    method: str
    path: str
    """The route's template (`/api/sandbox/{id}/start`), never the raw path (it may carry tokens)."""
    status_code: int
    error_message: str = ""
    ip_address: str = ""
    user_agent: str = ""
    source: str = ""
    """`X-Daytona-Source` (e.g. `sdk-python`)."""
    sdk_version: str = ""
    duration_ms: float = 0.0
    metadata: dict[str, Any] = {}
    """The request's query, path parameters and JSON body, secrets and env values masked."""


AuditEvent = Union[AuditRecorded]
