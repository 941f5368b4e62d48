"""Who or what made a change: a user, a timer or the platform (Daytona's payloads cannot tell).

Every recorded event carries `Corral-Actor` in its metadata (an API key's prefix, `supervisor`,
`runner:<id>`, ...) and requested events carry a `reason` (`user`, `auto-stop`, `auto-archive`,
`auto-delete`, ...). A change that a runner or the snapshot manager reports (its metadata names the fact
that caused it) and that completes what was asked carries the cause of the request, with `observedBy`:
a sandbox that reaches `stopped` after an auto-stop says `timer`, not `runner`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from corral_contracts.subjects import event_subject

PLATFORM_ACTORS = frozenset({"", "supervisor", "bootstrap", "webhooks", "snapshot-builds"})


class Cause(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    """`user`, `timer` or `platform`."""
    reason: str
    actor: str
    observed_by: str = ""
    observed: bool = False
    """The change was reported by a runner or the snapshot manager rather than asked for."""

    def completing(self, request: "Cause") -> "Cause":
        return Cause(kind=request.kind, reason=request.reason, actor=request.actor, observed_by=self.actor,
                     observed=True)

    def wire(self) -> dict[str, str]:
        out = {"kind": self.kind, "reason": self.reason, "actor": self.actor}
        if self.observed_by:
            out["observedBy"] = self.observed_by
        return out

    @property
    def asked(self) -> bool:
        """Asked by a user or a timer: what later reports complete."""
        return self.kind in ("user", "timer")


def cause_of(event: Any, meta: dict[str, str]) -> Cause:
    actor = meta.get("Corral-Actor", "")
    reason = getattr(event, "reason", None)
    if not isinstance(reason, str) or not reason:
        reason = event_subject(event).rsplit(".", 1)[-1]
    observed = "Corral-Causation-Id" in meta
    if reason.startswith("auto-"):
        kind = "timer"
    elif observed or actor in PLATFORM_ACTORS:
        kind = "platform"
    else:
        kind = "user"
    return Cause(kind=kind, reason=reason, actor=actor, observed=observed)
