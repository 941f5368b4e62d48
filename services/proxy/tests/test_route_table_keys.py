"""The proxy folds the same key and organization events as the api: revoked and expired keys stop
working at the proxy too, and a suspended organization's toolbox traffic is refused."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from corral_contracts import identity as idev
from corral_proxy.app.directory import Directory


def key_created(value: str, *, organization_id: str, name: str, expires_at: datetime | None = None
                ) -> idev.ApiKeyCreated:
    return idev.ApiKeyCreated(key_id=f"id-{name}", organization_id=organization_id, name=name,
                              key_hash=hashlib.sha256(value.encode()).hexdigest(), prefix=value[:8], suffix=value[-4:],
                              expires_at=expires_at)


async def _no_runners() -> dict[str, bytes]:
    return {}


def test_revoked_expired_and_suspended() -> None:
    directory = Directory(_no_runners, settle_wait=0.1)
    now = datetime.now(timezone.utc)
    forever = key_created("crl_forever", organization_id="org-a", name="a")
    brief = key_created("crl_brief", organization_id="org-a", name="b",
                        expires_at=now + timedelta(minutes=1))
    for event in (forever, brief):
        directory.table.apply(event)
    assert directory.organization_of_key("crl_forever") == "org-a"
    assert directory.organization_of_key("crl_brief", now) == "org-a"
    assert directory.organization_of_key("crl_brief", now + timedelta(minutes=2)) is None
    assert directory.organization_of_key("crl_unknown") is None
    directory.table.apply(idev.ApiKeyRevoked(key_id=forever.key_id, organization_id="org-a"))
    assert directory.organization_of_key("crl_forever") is None
    assert not directory.suspended("org-a")
    directory.table.apply(idev.OrganizationSuspended(organization_id="org-a"))
    assert directory.suspended("org-a")
    directory.table.apply(idev.OrganizationUnsuspended(organization_id="org-a"))
    assert not directory.suspended("org-a")
