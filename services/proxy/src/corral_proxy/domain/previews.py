"""Preview URLs, pure: where a request is going (host or path form), which credential it carries,
and the proxy's own preview cookie. No clock, no I/O: times and secrets are passed in.

- Host form: `{port}-{label}.{domain}` — the first DNS label split at its first `-`: the left part is
  the port, the right part a sandbox id (a UUID, itself full of `-`) or a signed token.
- Path form: `/preview/{label}/{port}/{path}` — for places without wildcard DNS.
- A label is a sandbox id (`8-4-4-4-12` lowercase hex) or a signed preview token (16 of `[a-z0-9]`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import unquote_plus

import msgspec

PATH_PREFIX = "/preview/"
COOKIE_PREFIX = "daytona-sandbox-auth-"
TOKEN_HEADER = "X-Daytona-Preview-Token"
QUERY_KEY = "DAYTONA_SANDBOX_AUTH_KEY"
SKIP_ACTIVITY_HEADER = "X-Daytona-Skip-Last-Activity-Update"
COOKIE_SECONDS = 3600

_SANDBOX_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SIGNED_TOKEN = re.compile(r"^[a-z0-9]{16}$")


class PreviewAddress(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    """A sandbox id or a signed preview token."""
    port: int
    form: str
    """`host` or `path`."""
    upstream: str
    """What the app gets: the raw path (the path form's prefix removed) and raw query."""

    @property
    def prefix(self) -> str:
        """The path prefix the app's absolute paths need on the way back (path form only)."""
        return f"{PATH_PREFIX}{self.label}/{self.port}" if self.form == "path" else ""

    @property
    def signed(self) -> bool:
        return is_signed_token(self.label)


def is_sandbox_id(label: str) -> bool:
    return bool(_SANDBOX_ID.match(label))


def is_signed_token(label: str) -> bool:
    return bool(_SIGNED_TOKEN.match(label))


def _port(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or text.startswith("0") or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def parse_host(host: str, domain: str, raw_path_and_query: str) -> PreviewAddress | None:
    """The preview a `Host` header names, or None if it is not `{port}-{label}.{domain}[:port]`."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    suffix = "." + domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    first = name[: -len(suffix)]
    if not first or "." in first:
        return None
    port_text, dash, label = first.partition("-")
    port = _port(port_text)
    if not dash or port is None or not label:
        return None
    return PreviewAddress(label=label, port=port, form="host", upstream=raw_path_and_query or "/")


def parse_path(raw_path_and_query: str) -> PreviewAddress | None:
    """The preview a `/preview/{label}/{port}/...` request names, or None."""
    raw_path, mark, raw_query = raw_path_and_query.partition("?")
    if not raw_path.startswith(PATH_PREFIX):
        return None
    parts = raw_path[len(PATH_PREFIX):].split("/", 2)
    if len(parts) < 2:
        return None
    label, port_text = parts[0].lower(), parts[1]
    port = _port(port_text)
    if port is None or not label:
        return None
    rest = "/" + parts[2] if len(parts) > 2 else "/"
    return PreviewAddress(label=label, port=port, form="path", upstream=rest + (mark + raw_query if raw_query else ""))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(presented: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def cookie_name(sandbox_id: str) -> str:
    return COOKIE_PREFIX + sandbox_id


def cookie_value(secret: bytes, sandbox_id: str, expires: int) -> str:
    """`{expires}.{signature}`: the holder proved it knew the sandbox's preview token, until `expires`."""
    digest = hmac.new(secret, f"preview-cookie:{sandbox_id}:{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def cookie_valid(secret: bytes, sandbox_id: str, value: str, now: float) -> bool:
    expires_text, _, _ = value.partition(".")
    if not (expires_text.isascii() and expires_text.isdigit()) or int(expires_text) <= now:
        return False
    return hmac.compare_digest(cookie_value(secret, sandbox_id, int(expires_text)).encode(), value.encode())


def split_query(raw_query: str, key: str) -> tuple[str, str | None]:
    """`raw_query` without the parameter `key` (other parameters byte for byte), and its value."""
    kept, value = [], None
    for part in raw_query.split("&") if raw_query else []:
        name, _, raw_value = part.partition("=")
        if unquote_plus(name) == key:
            value = unquote_plus(raw_value) if value is None else value
        else:
            kept.append(part)
    return "&".join(kept), value


def strip_query_key(upstream: str, key: str) -> tuple[str, str | None]:
    path, mark, raw_query = upstream.partition("?")
    query, value = split_query(raw_query, key)
    return path + ("?" + query if query else ""), value


def without_cookies(header: str, prefix: str) -> str:
    """A `Cookie` header without the cookies whose names start with `prefix` (ours, never the app's)."""
    kept = [c.strip() for c in header.split(";") if c.strip() and not c.strip().startswith(prefix)]
    return "; ".join(kept)
