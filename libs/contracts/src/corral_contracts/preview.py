"""Preview URLs: the signed-preview-URL events the api records, and the proxy's wake-on-visit request.

A signed preview URL is its own small aggregate (one stream per token, `signed_preview_url`), so
issuing many short-lived URLs never contends with a sandbox's state changes. Tokens are recorded only
as SHA-256 hashes (hex): the proxy hashes the token it is shown and looks the grant up.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec


class _SignedPreviewUrlEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "signed_preview_url"
    sandbox_id: str
    port: int
    token_hash: str
    """Hex SHA-256 of the token; the token itself is never recorded."""


class SignedPreviewUrlIssued(_SignedPreviewUrlEvent):
    """A URL that opens one port of one sandbox without other credentials, until `expires_at`."""

    organization_id: str
    expires_at: datetime


class SignedPreviewUrlExpired(_SignedPreviewUrlEvent):
    """The URL was revoked before its time (`POST …/signed-preview-url/{token}/expire`)."""

    reason: str = "revoked"


SignedPreviewUrlEvent = Union[SignedPreviewUrlIssued, SignedPreviewUrlExpired]


# --- request/reply: proxy -> api -----------------------------------------------------------------


class PreviewWakeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A preview of a stopped (or archived) sandbox was visited by an authorised caller: start it.

    The api records the start through its normal use case (actor `proxy`, reason `preview-visit`) and
    answers at once; the proxy then waits for the sandbox's route to become `started`."""

    sandbox_id: str
    port: int
    reason: str = "preview-visit"


class PreviewWakeReply(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool
    """The start was recorded (or the sandbox is already on its way to `started`)."""
    state: str = ""
    """The sandbox's state after the request."""
    message: str = ""
    """Why it was not accepted."""
