"""Organizations and API keys: their read model (folded with the sandbox directory) and use cases.

Keys are found by the SHA-256 of their value; the value is returned once, at creation, and never
recorded. `lastUsedAt` is kept coarsely: one `ApiKeyUsed` per key per `use_granularity` at most,
written off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from corral_contracts import identity as idev
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import identity as rules
from ..domain.errors import Conflict, Forbidden, NotFound
from ..domain.quotas import Quota, check_overrides


class ApiKeyEntry:
    __slots__ = ("key_id", "organization_id", "prefix", "suffix", "name", "permissions", "created_at", "expires_at",
                 "last_used_at", "revoked", "operator", "key_hash")

    def __init__(self, key_id: str, organization_id: str, prefix: str, *, suffix: str = "", name: str = "",
                 permissions: frozenset[str] = frozenset(), created_at: datetime | None = None,
                 expires_at: datetime | None = None, operator: bool = False, key_hash: str = ""):
        self.key_id = key_id
        self.organization_id = organization_id
        self.prefix = prefix
        self.suffix = suffix
        self.name = name
        self.permissions = permissions
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_used_at: datetime | None = None
        self.revoked = False
        self.operator = operator
        self.key_hash = key_hash

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def holds(self, permission: str) -> bool:
        return self.operator or permission in self.permissions


class OrganizationEntry(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created_at: datetime
    quota: idev.OrganizationQuota = idev.OrganizationQuota()
    suspended: bool = False
    suspension_reason: str = ""


class IdentityView:
    """Organizations and keys as of the events folded so far."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKeyEntry] = {}
        """SHA-256 of a key -> the key."""
        self.by_id: dict[str, ApiKeyEntry] = {}
        self.names: dict[tuple[str, str], ApiKeyEntry] = {}
        """(organization, name) -> its live (unrevoked) key."""
        self.organizations: dict[str, OrganizationEntry] = {}
        self.organization_names: dict[str, str] = {}
        """Lower-cased name -> organization id."""

    def apply(self, event: Recorded) -> bool:
        """Fold one event; False when it is none of this view's."""
        match event.payload:
            case idev.ApiKeyCreated() as p:
                entry = ApiKeyEntry(p.key_id, p.organization_id, p.prefix, suffix=p.suffix, name=p.name,
                                    permissions=frozenset(p.permissions), created_at=event.timestamp,
                                    expires_at=p.expires_at, operator=p.operator, key_hash=p.key_hash)
                self.keys[p.key_hash] = entry
                self.by_id[p.key_id] = entry
                self.names[(p.organization_id, p.name)] = entry
            case idev.ApiKeyRevoked() as p:
                entry = self.by_id.get(p.key_id)
                if entry is not None:
                    entry.revoked = True
                    if self.names.get((entry.organization_id, entry.name)) is entry:
                        del self.names[(entry.organization_id, entry.name)]
            case idev.ApiKeyUsed() as p:
                entry = self.by_id.get(p.key_id)
                if entry is not None and (entry.last_used_at is None or entry.last_used_at < event.timestamp):
                    entry.last_used_at = event.timestamp
            case idev.OrganizationCreated() as p:
                self.organizations[p.organization_id] = OrganizationEntry(id=p.organization_id, name=p.name,
                                                                          created_at=event.timestamp)
                self.organization_names[p.name.lower()] = p.organization_id
            case idev.OrganizationQuotaChanged() as p:
                if p.organization_id in self.organizations:
                    self.organizations[p.organization_id].quota = p.quota
            case idev.OrganizationSuspended() as p:
                if p.organization_id in self.organizations:
                    self.organizations[p.organization_id].suspended = True
                    self.organizations[p.organization_id].suspension_reason = p.reason
            case idev.OrganizationUnsuspended() as p:
                if p.organization_id in self.organizations:
                    self.organizations[p.organization_id].suspended = False
                    self.organizations[p.organization_id].suspension_reason = ""
            case idev.OrganizationNameClaimed() | idev.ApiKeyNameClaimed() | idev.ApiKeyNameReleased():
                pass
            case _:
                return False
        return True

    def authenticate(self, token: str, now: datetime) -> ApiKeyEntry | None:
        """The usable key with this value, or None (unknown, revoked or expired look the same)."""
        entry = self.keys.get(rules.hash_key(token)) if token else None
        return entry if entry is not None and entry.usable(now) else None

    def suspended(self, organization_id: str) -> bool:
        org = self.organizations.get(organization_id)
        return org is not None and org.suspended


def _slot(state: tuple[str | None, int] | None, event: Recorded) -> tuple[str | None, int]:
    """A key-name slot: who holds it (None = free) and its version."""
    holder = state[0] if state else None
    if isinstance(event.payload, idev.ApiKeyNameClaimed):
        holder = event.payload.key_id
    elif isinstance(event.payload, idev.ApiKeyNameReleased):
        holder = None
    return holder, event.originator_version


class IdentityService:
    """Creating organizations and keys, revoking keys, quotas and suspension."""

    def __init__(self, *, event_log: EventLog, view: IdentityView, catch_up: Callable[[], Any],
                 recorded: Callable[[], None], defaults: Quota, use_granularity: float = 300.0):
        self._log = event_log
        self._view = view
        self._catch_up = catch_up
        self._recorded = recorded
        self.defaults = defaults
        self._use_granularity = timedelta(seconds=use_granularity)
        self._use_tasks: set[asyncio.Task[None]] = set()

    async def _append(self, aggregate: uuid.UUID, version: int, events: list[Any], meta: dict[str, str],
                      *more: tuple[uuid.UUID, int, list[Any]]) -> None:
        await asyncio.to_thread(self._log.append, aggregate, version, events, meta, *more)
        self._recorded()
        await self._catch_up()

    async def _version(self, aggregate: uuid.UUID) -> int:
        return await asyncio.to_thread(self._log.version, aggregate)

    # --- reading ------------------------------------------------------------------------------

    def quota(self, organization_id: str) -> Quota:
        org = self._view.organizations.get(organization_id)
        return self.defaults.over(org.quota if org else None)

    def organization(self, caller: ApiKeyEntry, organization_id: str) -> OrganizationEntry:
        """An organization the caller may see: its own, or any for an operator; else 404."""
        org = self._view.organizations.get(organization_id)
        if org is None or (not caller.operator and org.id != caller.organization_id):
            raise NotFound(f"Organization {organization_id} not found")
        return org

    def organizations(self, caller: ApiKeyEntry) -> list[OrganizationEntry]:
        orgs = self._view.organizations.values()
        return sorted((o for o in orgs if caller.operator or o.id == caller.organization_id),
                      key=lambda o: (o.created_at, o.id))

    def keys(self, caller: ApiKeyEntry) -> list[ApiKeyEntry]:
        return sorted((k for (org, _), k in self._view.names.items() if org == caller.organization_id),
                      key=lambda k: (k.created_at or datetime.min.replace(tzinfo=timezone.utc), k.name))

    def key(self, caller: ApiKeyEntry, name: str) -> ApiKeyEntry:
        entry = self._view.names.get((caller.organization_id, name))
        if entry is None:
            raise NotFound(f"API key {name} not found")
        return entry

    # --- bootstrap ----------------------------------------------------------------------------

    async def ensure_bootstrap(self, admin_key: str) -> None:
        """The platform's default organization and its operator key (idempotent; safe with replicas)."""
        meta = {"Corral-Actor": "bootstrap"}
        if rules.DEFAULT_ORGANIZATION_ID not in self._view.organizations:
            org = idev.OrganizationCreated(organization_id=rules.DEFAULT_ORGANIZATION_ID,
                                           name=rules.DEFAULT_ORGANIZATION_NAME)
            claim = idev.OrganizationNameClaimed(name=rules.DEFAULT_ORGANIZATION_NAME,
                                                 organization_id=rules.DEFAULT_ORGANIZATION_ID)
            try:
                await self._append(uuid.UUID(rules.DEFAULT_ORGANIZATION_ID), 0, [org], meta,
                                   (rules.organization_name_key(rules.DEFAULT_ORGANIZATION_NAME), 0, [claim]))
            except ConcurrencyConflict:
                await self._catch_up()
        key_hash = rules.hash_key(admin_key)
        if key_hash not in self._view.keys:
            created = rules.admin_key_created(admin_key)
            try:
                await self._append(rules.key_id_for(key_hash), 0, [created], meta)
            except ConcurrencyConflict:
                await self._catch_up()
        for entry in list(self._view.keys.values()):
            if entry.operator and not entry.revoked and entry.key_hash != key_hash:  # an admin key replaced
                aggregate = uuid.UUID(entry.key_id)
                try:
                    await self._append(aggregate, await self._version(aggregate),
                                       [idev.ApiKeyRevoked(key_id=entry.key_id, organization_id=entry.organization_id)],
                                       meta)
                except ConcurrencyConflict:
                    await self._catch_up()

    # --- organizations --------------------------------------------------------------------------

    async def create_organization(self, caller: ApiKeyEntry, name: str, meta: dict[str, str]
                                  ) -> tuple[OrganizationEntry, str, ApiKeyEntry]:
        """A new organization and its first key (every permission), whose value is returned once."""
        if not caller.operator:
            raise Forbidden("Only a platform operator can create organizations")
        rules.check_name("organization", name)
        if name.lower() in self._view.organization_names:
            raise Conflict(f"Organization {name} already exists")
        organization_id = str(uuid.uuid4())
        value = rules.new_api_key()
        key = rules.key_created(value, organization_id=organization_id, name="default",
                                permissions=rules.ALL_PERMISSIONS, created_by=caller.key_id)
        try:
            await self._append(
                uuid.UUID(organization_id), 0,
                [idev.OrganizationCreated(organization_id=organization_id, name=name, created_by=caller.key_id)], meta,
                (rules.organization_name_key(name), 0,
                 [idev.OrganizationNameClaimed(name=name, organization_id=organization_id)]),
                (uuid.UUID(key.key_id), 0, [key]),
                (rules.key_name_key(organization_id, key.name), 0,
                 [idev.ApiKeyNameClaimed(organization_id=organization_id, name=key.name, key_id=key.key_id)]))
        except ConcurrencyConflict:
            raise Conflict(f"Organization {name} already exists") from None
        return self._view.organizations[organization_id], value, self._view.by_id[key.key_id]

    async def set_quota(self, caller: ApiKeyEntry, organization_id: str, changes: dict[str, int | None],
                        meta: dict[str, str]) -> OrganizationEntry:
        """Merge `changes` (a None value returns that limit to the platform default) into the quota."""
        if not caller.operator:
            raise Forbidden("Only a platform operator can change quotas")
        org = self.organization(caller, organization_id)
        current = msgspec.structs.asdict(org.quota)
        quota = check_overrides(idev.OrganizationQuota(**(current | changes)))
        if quota != org.quota:
            await self._append(uuid.UUID(org.id), await self._version(uuid.UUID(org.id)),
                               [idev.OrganizationQuotaChanged(organization_id=org.id, quota=quota)], meta)
        return self._view.organizations[org.id]

    async def suspend(self, caller: ApiKeyEntry, organization_id: str, suspended: bool, reason: str,
                      meta: dict[str, str]) -> OrganizationEntry:
        if not caller.operator:
            raise Forbidden("Only a platform operator can suspend organizations")
        org = self.organization(caller, organization_id)
        if org.id == caller.organization_id and suspended:
            raise Forbidden("An operator cannot suspend its own organization")
        if org.suspended != suspended:
            event: Any = (idev.OrganizationSuspended(organization_id=org.id, reason=reason[:500]) if suspended
                          else idev.OrganizationUnsuspended(organization_id=org.id))
            await self._append(uuid.UUID(org.id), await self._version(uuid.UUID(org.id)), [event], meta)
        return self._view.organizations[org.id]

    # --- keys -------------------------------------------------------------------------------------

    async def create_key(self, caller: ApiKeyEntry, name: str, permissions: list[str],
                         expires_at: datetime | None, meta: dict[str, str]) -> tuple[str, ApiKeyEntry]:
        rules.check_name("API key", name)
        if name in rules.RESERVED_KEY_NAMES:
            raise Conflict(f"{name!r} is a reserved key name")
        granted = rules.check_permissions(permissions, None if caller.operator else caller.permissions)
        now = datetime.now(timezone.utc)
        expires_at = rules.check_expiry(expires_at, caller.expires_at, now)
        if (caller.organization_id, name) in self._view.names:
            raise Conflict(f"API key {name} already exists")
        value = rules.new_api_key()
        key = rules.key_created(value, organization_id=caller.organization_id, name=name, permissions=granted,
                                expires_at=expires_at, created_by=caller.key_id)
        slot = rules.key_name_key(caller.organization_id, name)
        holder, slot_version = await asyncio.to_thread(self._log.load, slot, _slot) or (None, 0)
        if holder is not None:
            raise Conflict(f"API key {name} already exists")
        try:
            await self._append(uuid.UUID(key.key_id), 0, [key], meta,
                               (slot, slot_version,
                                [idev.ApiKeyNameClaimed(organization_id=caller.organization_id, name=name,
                                                        key_id=key.key_id)]))
        except ConcurrencyConflict:
            raise Conflict(f"API key {name} already exists") from None
        return value, self._view.by_id[key.key_id]

    async def revoke_key(self, caller: ApiKeyEntry, name: str, meta: dict[str, str]) -> None:
        """A key may revoke itself, or a key of its organization that holds nothing it lacks."""
        entry = self.key(caller, name)
        if entry.operator:
            raise Forbidden("The platform operator's key cannot be revoked; configure another CORRAL_ADMIN_API_KEY "
                            "and restart the api (the previous one is revoked then)")
        if entry is not caller and not caller.operator and (entry.operator or not entry.permissions <= caller.permissions):
            raise Forbidden(f"API key {name} holds permissions this key lacks; it cannot revoke it")
        slot = rules.key_name_key(entry.organization_id, entry.name)
        more = []
        holder, slot_version = await asyncio.to_thread(self._log.load, slot, _slot) or (None, 0)
        if holder == entry.key_id:
            more.append((slot, slot_version, [idev.ApiKeyNameReleased(organization_id=entry.organization_id,
                                                                      name=entry.name, key_id=entry.key_id)]))
        key_aggregate = uuid.UUID(entry.key_id)
        for _ in range(5):
            try:
                await self._append(key_aggregate, await self._version(key_aggregate),
                                   [idev.ApiKeyRevoked(key_id=entry.key_id, organization_id=entry.organization_id)],
                                   meta, *more)
                return
            except ConcurrencyConflict:  # a concurrent `ApiKeyUsed`, or a concurrent revoke
                await self._catch_up()
                if entry.revoked:
                    return
        raise Conflict(f"API key {name} is changing too quickly; try again")

    def used(self, entry: ApiKeyEntry, now: datetime) -> None:
        """Note a use of the key; records `ApiKeyUsed` in the background, at most once per granularity."""
        if entry.last_used_at is not None and now - entry.last_used_at < self._use_granularity:
            return
        entry.last_used_at = now
        task = asyncio.create_task(self._record_use(entry))
        self._use_tasks.add(task)
        task.add_done_callback(self._use_tasks.discard)

    async def _record_use(self, entry: ApiKeyEntry) -> None:
        aggregate = uuid.UUID(entry.key_id)
        try:
            await self._append(aggregate, await self._version(aggregate),
                               [idev.ApiKeyUsed(key_id=entry.key_id, organization_id=entry.organization_id)],
                               {"Corral-Actor": f"key:{entry.key_id}"})
        except ConcurrencyConflict:
            pass  # another replica, or a revoke, got there first: the use is recorded well enough
        except Exception:
            logging.getLogger(__name__).exception("could not record the use of key %s", entry.prefix)

    async def drain(self) -> None:
        if self._use_tasks:
            await asyncio.gather(*self._use_tasks, return_exceptions=True)
