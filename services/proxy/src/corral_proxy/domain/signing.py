"""Signed file URLs (daytona-wire.md §5.3): `GET .../files/download` and `POST .../files/upload-v2`
carrying `path`, `expires` and `signature` instead of an API key. Pure: no clock, no I/O.

`signature` = `v1_` + unpadded base64url of HMAC-SHA256(sandbox signing key,
`"v1:files:<METHOD>:<path>:<expires>"`); `expires` is a Unix time in seconds, 0 = never.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "v1_"
SIGNED_OPERATIONS = {("GET", "files/download"), ("POST", "files/upload-v2")}
"""(method, toolbox path) pairs a signature may open; nothing else is reachable without an API key."""


class SignatureRefused(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def is_signed_request(method: str, tail: str, query: dict[str, str]) -> bool:
    return (method.upper(), tail.strip("/")) in SIGNED_OPERATIONS and "signature" in query


def sign(key: str, method: str, path: str, expires: int) -> str:
    canonical = f"v1:files:{method.upper()}:{path}:{expires}".encode()
    digest = hmac.new(key.encode(), canonical, hashlib.sha256).digest()
    return PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def matches(key: str, method: str, path: str, expires: str, signature: str) -> bool:
    """The signature was made with `key` for exactly this method, path and expiry."""
    if not key or not signature.startswith(PREFIX) or not (expires.isascii() and expires.isdigit()):
        return False
    return hmac.compare_digest(sign(key, method, path, int(expires)).encode(), signature.encode())


def check_expiry(expires: str, now: float) -> None:
    """After the signature matched: refuse a URL whose time is up (0 never expires)."""
    at = int(expires)
    if at != 0 and now > at:
        raise SignatureRefused(403, "This signed URL has expired", "SIGNATURE_EXPIRED")


def invalid() -> SignatureRefused:
    return SignatureRefused(401, "Invalid or missing signature (or the signing key was rotated)", "INVALID_SIGNATURE")
