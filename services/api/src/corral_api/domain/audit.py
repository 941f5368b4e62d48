"""The audit trail's pure parts: masking secrets out of request metadata, naming a route's action and
target type, and the query language of `GET /api/audit` (filters, pages, stable next tokens)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import msgspec

from .errors import InvalidRequest

MASK = "********"
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credential|authorization|cookie|"
    r"signing[-_]?key|auth[-_]?key|^value$", re.IGNORECASE)
"""Keys whose values are secrets wherever they appear (bodies, query strings, path parameters)."""
ENV_NAME = re.compile(r"^(env|envs|environment|build[-_]?args)$", re.IGNORECASE)
"""Maps of environment variables: the names are kept, every value masked."""
SECRET_VALUE = re.compile(r"^(crl|dtn)_[0-9a-f]{16,}$")
"""An API key pasted where no secret was expected is masked all the same."""
MAX_STRING = 512
MAX_ITEMS = 100
MAX_DEPTH = 6

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

TARGET_TYPES = {
    "sandbox": "sandbox", "snapshots": "snapshot", "volumes": "volume", "api-keys": "api_key",
    "organizations": "organization", "webhooks": "webhook", "audit": "audit", "docker-registry": "docker_registry",
    "runners": "runner", "regions": "region",
}


def mask(value: Any, depth: int = 0) -> Any:
    """A copy of `value` safe to record: secret-named keys and env values masked, strings and lists
    truncated, nesting bounded."""
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                out["..."] = f"{len(value) - MAX_ITEMS} more"
                break
            key = str(key)[:MAX_STRING]
            if SECRET_NAME.search(key):
                out[key] = item if item in (None, "") else MASK
            elif ENV_NAME.match(key) and isinstance(item, dict):
                out[key] = {str(name)[:MAX_STRING]: MASK for name in list(item)[:MAX_ITEMS]}
            else:
                out[key] = mask(item, depth + 1)
        return out
    if isinstance(value, list):
        return [mask(item, depth + 1) for item in value[:MAX_ITEMS]]
    if isinstance(value, str):
        if SECRET_VALUE.match(value):
            return MASK
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "..."
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return str(value)[:MAX_STRING]
    return value


def target_type(path: str) -> str:
    """`/api/sandbox/{id}/start` -> `sandbox`; unknown families get their own name, singular."""
    family = path.removeprefix("/api/").split("/", 1)[0]
    return TARGET_TYPES.get(family) or family.replace("-", "_").removesuffix("s") or "api"


def action(method: str, path: str) -> str:
    """Daytona's action for a route: `create`, `delete`, `update`, or the verb a route ends with
    (`/sandbox/{id}/start` -> `start`). Routes with a special name say so in the route table."""
    segments = path.removeprefix("/api/").split("/")
    while segments and segments[-1].startswith("{"):
        segments.pop()
    if len(segments) >= 2 and any(s.startswith("{") for s in segments):
        verb = segments[-1].replace("-", "_")
        return f"update_{verb}" if method in ("PUT", "PATCH") else verb
    if path.rstrip("/").endswith("}"):
        return {"DELETE": "delete", "GET": "read"}.get(method, "update")
    return {"POST": "create", "DELETE": "delete", "GET": "read"}.get(method, "update")


# --- querying --------------------------------------------------------------------------------------

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
STATUS_CLASS = re.compile(r"^[1-5]xx$")


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    actor: str | None = None
    """A key id, key name or key prefix."""
    status: str | None = None
    """An exact code (`404`) or a class (`4xx`)."""
    organization_id: str | None = None
    """Operators only: another organization's trail (`all` = every organization, and refused keys)."""
    page: int = 1
    limit: int = DEFAULT_LIMIT
    next_token: str | None = None

    def fingerprint(self) -> str:
        filters = [self.since, self.until, self.action, self.target_type, self.target_id, self.actor, self.status,
                   self.organization_id]
        return hashlib.sha256(msgspec.json.encode(filters)).hexdigest()[:12]


PARAMETERS = (
    ("from", {"type": "string", "format": "date-time"}, "Only entries at or after this time"),
    ("to", {"type": "string", "format": "date-time"}, "Only entries at or before this time"),
    ("action", {"type": "string"}, "e.g. create, start, delete, replace_labels"),
    ("targetType", {"type": "string"}, "e.g. sandbox, api_key, organization"),
    ("targetId", {"type": "string"}, ""),
    ("actor", {"type": "string"}, "The acting key's id, name or prefix"),
    ("status", {"type": "string"}, "A status code (404) or class (4xx)"),
    ("organizationId", {"type": "string"}, "Operators: another organization, or `all`"),
    ("page", {"type": "integer", "minimum": 1}, "1-based page (default 1)"),
    ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, f"Items per page (default {DEFAULT_LIMIT})"),
    ("nextToken", {"type": "string"}, "Continue after the last item of a previous page (stable under new entries)"),
)


def _time(name: str, raw: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time, got {raw[:40]!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_query(pairs: Iterable[tuple[str, str]]) -> AuditQuery:
    fields: dict[str, Any] = {}
    for name, raw in pairs:
        if raw == "":
            continue  # an empty value is no value, as in the sandbox list
        match name:
            case "from":
                fields["since"] = _time(name, raw)
            case "to":
                fields["until"] = _time(name, raw)
            case "action" | "actor" | "nextToken":
                fields[{"nextToken": "next_token"}.get(name, name)] = raw
            case "targetType":
                fields["target_type"] = raw
            case "targetId":
                fields["target_id"] = raw
            case "organizationId":
                fields["organization_id"] = raw
            case "status":
                if not (raw.isdigit() and len(raw) == 3 or STATUS_CLASS.match(raw)):
                    raise InvalidRequest(f"status must be a status code (404) or a class (4xx), got {raw[:40]!r}")
                fields["status"] = raw
            case "page":
                fields["page"] = _int(name, raw, 1, 1_000_000)
            case "limit":
                fields["limit"] = _int(name, raw, 1, MAX_LIMIT)
    return AuditQuery(**fields)


def status_matches(wanted: str, status: int) -> bool:
    return str(status) == wanted or (wanted.endswith("xx") and str(status)[0] == wanted[0])


def encode_token(seq: int, query: AuditQuery) -> str:
    raw = json.dumps({"s": seq, "f": query.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, query: AuditQuery) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        seq, fingerprint = data["s"], data["f"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidRequest("nextToken is not a token this API issued") from None
    if fingerprint != query.fingerprint():
        raise InvalidRequest("nextToken belongs to a query with other filters")
    return seq
