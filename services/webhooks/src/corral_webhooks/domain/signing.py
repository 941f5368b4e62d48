"""Standard Webhooks signatures (the `standardwebhooks` library, and Svix's, verify them).

The secret is `whsec_` + base64 of the key. Each attempt sends `webhook-id` (the same for every attempt of
a delivery), `webhook-timestamp` (Unix seconds, the attempt's time) and `webhook-signature`:
`v1,` + base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}"). Signing a small body takes microseconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Signed with every secret given (space-separated signatures: after a rotation, the new secret and the
    previous one, so a receiver verifying with either accepts it)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
