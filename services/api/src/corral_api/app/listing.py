"""Listing sandboxes: Daytona's filters, sorts and cursors, as pure functions over `Sandbox` values.

`parse_query` turns the query string's `(name, value)` pairs into a `ListQuery`; every bad value
raises `InvalidRequest` with a message naming the parameter (a 400 at the edge, never a 500).
`select` answers one page of a query from any collection of sandboxes.

Paging is by keyset, not by offset: a cursor holds the sort key and id of the last item served (plus
the sort, the order and a fingerprint of the filters it belongs to), and the next page starts strictly
after that position. Sandboxes created or removed between two pages therefore never shift the
others: nothing is served twice and nothing present throughout is skipped. A cursor presented with
another sort, order or filter is refused rather than silently misread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from ..domain.errors import InvalidRequest
from ..domain.sandbox import Sandbox

STATES = frozenset(
    "creating restoring destroyed destroying started stopped starting stopping error build_failed pending_build "
    "building_snapshot unknown pulling_snapshot archived archiving resizing snapshotting forking pausing paused "
    "resuming".split()
)
"""Daytona's state vocabulary: any of these is a valid `states` value (destroyed sandboxes are never listed)."""

SANDBOX_CLASSES = frozenset({"container", "linux-vm", "windows", "android"})
SANDBOX_CLASS = "container"
"""Every Corral sandbox is a container."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 200
CURSOR_VERSION = 1


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


SORTS: dict[str, Callable[[Sandbox], int | str]] = {
    "createdAt": lambda s: _micros(s.created_at),
    "updatedAt": lambda s: _micros(s.updated_at),
    "lastActivityAt": lambda s: _micros(s.updated_at),
    "name": lambda s: s.name.lower(),
    "state": lambda s: s.state,
    "cpu": lambda s: s.cpu,
    "memoryGib": lambda s: s.memory,
    "diskGib": lambda s: s.disk,
}
"""Sort fields (the SDK's `SandboxListSortField` values, plus `updatedAt` and `state`); ties go by id.
`lastActivityAt` is the time of the sandbox's last event until activity is tracked separately."""

SORT_ALIASES = {"memory": "memoryGib", "disk": "diskGib", "lastEventAt": "updatedAt"}
_STRING_SORTS = frozenset({"name", "state"})
ORDERS = ("asc", "desc")


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """A normalized filter: prefixes lowercased, sets sorted, times in UTC (its encoding is canonical)."""

    id: str | None = None
    name: str | None = None
    labels: dict[str, str] = {}
    states: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    sandbox_classes: tuple[str, ...] = ()
    min_cpu: int | None = None
    max_cpu: int | None = None
    min_memory: int | None = None
    max_memory: int | None = None
    min_disk: int | None = None
    max_disk: int | None = None
    min_gpu: int | None = None
    max_gpu: int | None = None
    is_public: bool | None = None
    is_recoverable: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    last_event_after: datetime | None = None
    last_event_before: datetime | None = None
    auto_destroy_after: datetime | None = None
    auto_destroy_before: datetime | None = None
    include_errored_deleted: bool = False

    def fingerprint(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()[:16]


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    filters: Filters = Filters()
    sort: str = "createdAt"
    order: str = "desc"
    limit: int = DEFAULT_LIMIT
    after: tuple[int | str, str] | None = None
    """Keyset position from the cursor: (sort key, id) of the last item of the previous page."""


class Page(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Sandbox]
    next_cursor: str | None


# --- matching ------------------------------------------------------------------------------------


def _within(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def matches(sandbox: Sandbox, f: Filters) -> bool:
    """Does one sandbox pass every filter? Destroyed sandboxes never do; one that failed while being
    destroyed (`error`, desired `destroyed`) does only with `include_errored_deleted`."""
    if sandbox.state == "destroyed":
        return False
    if sandbox.state == "error" and sandbox.desired_state == "destroyed" and not f.include_errored_deleted:
        return False
    if f.id is not None and not sandbox.id.lower().startswith(f.id):
        return False
    if f.name is not None and not sandbox.name.lower().startswith(f.name):
        return False
    if f.labels and not all(sandbox.labels.get(k) == v for k, v in f.labels.items()):
        return False
    if f.states and sandbox.state not in f.states:
        return False
    if f.snapshots and sandbox.snapshot not in f.snapshots:
        return False
    if f.targets and sandbox.target not in f.targets:
        return False
    if f.sandbox_classes and SANDBOX_CLASS not in f.sandbox_classes:
        return False
    if not (_within(sandbox.cpu, f.min_cpu, f.max_cpu) and _within(sandbox.memory, f.min_memory, f.max_memory)
            and _within(sandbox.disk, f.min_disk, f.max_disk) and _within(sandbox.gpu, f.min_gpu, f.max_gpu)):
        return False
    if f.is_public is not None and sandbox.public != f.is_public:
        return False
    if f.is_recoverable is not None and sandbox.recoverable != f.is_recoverable:
        return False
    if f.created_after is not None and not sandbox.created_at > f.created_after:
        return False
    if f.created_before is not None and not sandbox.created_at < f.created_before:
        return False
    if f.last_event_after is not None and not sandbox.updated_at > f.last_event_after:
        return False
    if f.last_event_before is not None and not sandbox.updated_at < f.last_event_before:
        return False
    if f.auto_destroy_after is not None or f.auto_destroy_before is not None:
        return False  # no sandbox has an auto-destroy time scheduled yet
    return True


def select(sandboxes: Iterable[Sandbox], organization_id: str, query: ListQuery) -> Page:
    """One page of `query` among `sandboxes` (any order), and the cursor of the next page if there is one."""
    key = SORTS[query.sort]
    f = query.filters
    candidates = ((key(s), s.id, s) for s in sandboxes if s.organization_id == organization_id and matches(s, f))
    descending = query.order == "desc"
    if query.after is not None:
        after = query.after
        candidates = (c for c in candidates if ((c[0], c[1]) < after if descending else (c[0], c[1]) > after))
    pick = heapq.nlargest if descending else heapq.nsmallest
    chosen = pick(query.limit + 1, candidates, key=lambda c: (c[0], c[1]))
    more = len(chosen) > query.limit
    chosen = chosen[:query.limit]
    next_cursor = encode_cursor(query, chosen[-1][0], chosen[-1][1]) if more else None
    return Page(items=[c[2] for c in chosen], next_cursor=next_cursor)


# --- cursors -------------------------------------------------------------------------------------


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    version: int
    sort: str
    order: str
    filters: str
    key: int | str
    id: str


def encode_cursor(query: ListQuery, key: int | str, sandbox_id: str) -> str:
    raw = msgspec.json.encode(_Cursor(CURSOR_VERSION, query.sort, query.order, query.filters.fingerprint(), key,
                                      sandbox_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str, *, sort: str, order: str, filters: Filters) -> tuple[int | str, str]:
    """The keyset position a cursor holds; refuses one made for another sort, order or filter."""
    try:
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        cursor = msgspec.json.decode(data, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidRequest("cursor is not valid: pass back the nextCursor of a previous page unchanged") from None
    if cursor.version != CURSOR_VERSION:
        raise InvalidRequest("cursor is not valid: pass back the nextCursor of a previous page unchanged")
    if (cursor.sort, cursor.order, cursor.filters) != (sort, order, filters.fingerprint()):
        raise InvalidRequest("cursor belongs to another sort, order or filter; "
                             "repeat the query it came from, or start again without a cursor")
    if isinstance(cursor.key, str) != (sort in _STRING_SORTS):
        raise InvalidRequest("cursor is not valid: pass back the nextCursor of a previous page unchanged")
    return cursor.key, cursor.id


# --- parsing the query string --------------------------------------------------------------------


_OFFSET_SPACE = re.compile(r" (\d{2}:?\d{2})$")


class _Params:
    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def text(self, name: str) -> str | None:
        values = [v for v in self._values.get(name, []) if v != ""]
        if len(values) > 1:
            raise InvalidRequest(f"{name} may be given only once")
        return values[0] if values else None

    def many(self, name: str) -> tuple[str, ...]:
        """Repeated (`states=a&states=b`, also `states[]=`) or comma-separated (`states=a,b`)."""
        raw = self._values.get(name, []) + self._values.get(name + "[]", [])
        return tuple(sorted({part.strip() for value in raw for part in value.split(",") if part.strip()}))

    def integer(self, name: str, low: int = 0, high: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not re.fullmatch(r"[+-]?\d{1,9}", value.strip()):
            raise InvalidRequest(f"{name} must be an integer, got {value!r}")
        number = int(value)
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidRequest(f"{name} must be {bounds}, got {number}")
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise InvalidRequest(f"{name} must be true or false, got {value!r}")
        return value.lower() == "true"

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            # An unencoded '+' of a UTC offset arrives as a space.
            at = datetime.fromisoformat(_OFFSET_SPACE.sub(r"+\1", value.strip()))
        except ValueError:
            raise InvalidRequest(f"{name} must be an ISO 8601 date or time (e.g. 2026-01-31T12:00:00Z), "
                                 f"got {value!r}") from None
        return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _labels(raw: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    try:
        labels = json.loads(raw)
    except ValueError:
        labels = None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidRequest('labels must be a JSON object of strings, e.g. {"team":"ml"}')
    return labels


def _range(p: _Params, low_name: str, high_name: str) -> tuple[int | None, int | None]:
    low, high = p.integer(low_name), p.integer(high_name)
    if low is not None and high is not None and low > high:
        raise InvalidRequest(f"{low_name} ({low}) must not be greater than {high_name} ({high})")
    return low, high


def _period(p: _Params, after_name: str, before_name: str) -> tuple[datetime | None, datetime | None]:
    after, before = p.time(after_name), p.time(before_name)
    if after is not None and before is not None and after >= before:
        raise InvalidRequest(f"{after_name} must be earlier than {before_name}")
    return after, before


def parse_query(pairs: Iterable[tuple[str, str]]) -> ListQuery:
    """`GET /sandbox`'s query string (every `(name, value)` pair, repeats included) as a `ListQuery`."""
    p = _Params(pairs)
    states = p.many("states")
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise InvalidRequest(f"unknown state {unknown[0]!r} in states; expected some of {', '.join(sorted(STATES))}")
    classes = p.many("sandboxClasses")
    unknown = [c for c in classes if c not in SANDBOX_CLASSES]
    if unknown:
        raise InvalidRequest(f"unknown sandbox class {unknown[0]!r}; expected some of {', '.join(sorted(SANDBOX_CLASSES))}")
    min_cpu, max_cpu = _range(p, "minCpu", "maxCpu")
    min_memory, max_memory = _range(p, "minMemoryGiB", "maxMemoryGiB")
    min_disk, max_disk = _range(p, "minDiskGiB", "maxDiskGiB")
    min_gpu, max_gpu = _range(p, "minGpu", "maxGpu")
    created_after, created_before = _period(p, "createdAtAfter", "createdAtBefore")
    last_event_after, last_event_before = _period(p, "lastEventAfter", "lastEventBefore")
    auto_destroy_after, auto_destroy_before = _period(p, "autoDestroyAtAfter", "autoDestroyAtBefore")
    sandbox_id, name = p.text("id"), p.text("name")
    filters = Filters(
        id=sandbox_id.lower() if sandbox_id is not None else None, name=name.lower() if name is not None else None,
        labels=_labels(p.text("labels")), states=states, snapshots=p.many("snapshots"),
        targets=p.many("regionIds"), sandbox_classes=classes,
        min_cpu=min_cpu, max_cpu=max_cpu, min_memory=min_memory, max_memory=max_memory,
        min_disk=min_disk, max_disk=max_disk, min_gpu=min_gpu, max_gpu=max_gpu,
        is_public=p.boolean("isPublic"), is_recoverable=p.boolean("isRecoverable"),
        created_after=created_after, created_before=created_before,
        last_event_after=last_event_after, last_event_before=last_event_before,
        auto_destroy_after=auto_destroy_after, auto_destroy_before=auto_destroy_before,
        include_errored_deleted=bool(p.boolean("includeErroredDeleted")),
    )
    sort = p.text("sort") or "createdAt"
    sort = next((s for s in (*SORTS, *SORT_ALIASES) if s.lower() == sort.lower()), sort)
    sort = SORT_ALIASES.get(sort, sort)
    if sort not in SORTS:
        raise InvalidRequest(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    order = (p.text("order") or "desc").lower()
    if order not in ORDERS:
        raise InvalidRequest(f"order must be asc or desc, got {order!r}")
    limit = p.integer("limit", 1, MAX_LIMIT)
    cursor = p.text("cursor")
    after = decode_cursor(cursor, sort=sort, order=order, filters=filters) if cursor is not None else None
    return ListQuery(filters=filters, sort=sort, order=order, limit=DEFAULT_LIMIT if limit is None else limit,
                     after=after)


_DATE = {"type": "string", "format": "date-time"}
_INT = {"type": "integer", "minimum": 0}
_LIST = {"type": "array", "items": {"type": "string"}}

PARAMETERS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("id", {"type": "string"}, "Sandbox id prefix, case-insensitive"),
    ("name", {"type": "string"}, "Sandbox name prefix, case-insensitive"),
    ("labels", {"type": "string"}, 'JSON object, e.g. {"team":"ml"}; a sandbox matches when it has every key with '
                                   "exactly that value"),
    ("states", {"type": "array", "items": {"type": "string", "enum": sorted(STATES)}},
     "Any of these states; repeated (states=a&states=b) or comma-separated. Destroyed sandboxes are never listed"),
    ("snapshots", _LIST, "Any of these snapshot names; repeated or comma-separated"),
    ("regionIds", _LIST, "Any of these targets (regions); repeated or comma-separated"),
    ("sandboxClasses", {"type": "array", "items": {"type": "string", "enum": sorted(SANDBOX_CLASSES)}},
     "Any of these classes; every Corral sandbox is a container"),
    ("minCpu", _INT, "At least this many vCPUs"),
    ("maxCpu", _INT, "At most this many vCPUs"),
    ("minMemoryGiB", _INT, "At least this much memory (GiB)"),
    ("maxMemoryGiB", _INT, "At most this much memory (GiB)"),
    ("minDiskGiB", _INT, "At least this much disk (GiB)"),
    ("maxDiskGiB", _INT, "At most this much disk (GiB)"),
    ("minGpu", _INT, "At least this many GPUs"),
    ("maxGpu", _INT, "At most this many GPUs"),
    ("isPublic", {"type": "boolean"}, "true or false: previews without authentication"),
    ("isRecoverable", {"type": "boolean"}, "true or false: an errored sandbox that can be recovered"),
    ("createdAtAfter", _DATE, "Created strictly after this ISO 8601 time (no offset = UTC)"),
    ("createdAtBefore", _DATE, "Created strictly before this ISO 8601 time"),
    ("lastEventAfter", _DATE, "Last changed (its latest event, `updatedAt`) strictly after this time"),
    ("lastEventBefore", _DATE, "Last changed strictly before this time"),
    ("autoDestroyAtAfter", _DATE, "Scheduled for auto-destroy after this time (none is scheduled yet: matches "
                                  "no sandbox)"),
    ("autoDestroyAtBefore", _DATE, "Scheduled for auto-destroy before this time (matches no sandbox yet)"),
    ("includeErroredDeleted", {"type": "boolean"},
     "Also list sandboxes that failed while being destroyed (state error, desired state destroyed)"),
    ("sort", {"type": "string", "enum": [*SORTS, *SORT_ALIASES], "default": "createdAt"},
     "Sort field; ties are broken by id. lastActivityAt is the time of the last event"),
    ("order", {"type": "string", "enum": list(ORDERS), "default": "desc"}, "Sort direction"),
    ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size"),
    ("cursor", {"type": "string"}, "nextCursor of the previous page, unchanged; valid only with the same filters, "
                                   "sort and order"),
)
"""Every query parameter of `GET /sandbox`, as (name, JSON schema, description), for the OpenAPI document."""
